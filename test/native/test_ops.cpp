// Elementwise, rotary and attention kernels against plain scalar references.
#include <cstdio>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "dtype.h"
#include "test.h"

using namespace difflm;

TEST(rmsnorm_matches_reference_for_each_weight_dtype) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (int64_t dim : {1, 7, 64, 129}) {
    const int64_t rows = 5;
    auto x = difflm_test::random_floats(rows * dim, rng, 3.f);
    auto w = difflm_test::random_floats(dim, rng);
    std::vector<uint16_t> wb(dim), wh(dim);
    for (int64_t i = 0; i < dim; ++i) wb[i] = f32_to_bf16(w[i]), wh[i] = f32_to_f16(w[i]);
    for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
      const void* wp = dt == DType::F32    ? static_cast<const void*>(w.data())
                       : dt == DType::BF16 ? static_cast<const void*>(wb.data())
                                           : static_cast<const void*>(wh.data());
      std::vector<float> out(rows * dim, NAN), ref(rows * dim);
      rmsnorm(x.data(), rows, dim, wp, dt, 1e-5f, out.data(), &pool);
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
        const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
        for (int64_t i = 0; i < dim; ++i)
          ref[r * dim + i] = float(x[r * dim + i] * inv * load_as_f32(wp, dt, i));
      }
      CHECK_MSG(difflm_test::rel_l2(out, ref) <= 1e-6, "dim " << dim << " " << dtype_name(dt));
    }
  }
}

TEST(rope_rotate_half_matches_reference) {
  std::mt19937 rng(8);
  const int64_t max_pos = 40, hd = 10, heads = 3, rows = 13, pos0 = 21;
  std::vector<float> storage(2 * max_pos * hd / 2);
  RopeTable t{max_pos, hd / 2, storage.data(), storage.data() + max_pos * hd / 2};
  rope_fill(t, 500000.0);
  auto x = difflm_test::random_floats(rows * heads * hd, rng);
  auto y = x;
  ThreadPool pool(2);
  rope_apply(y.data(), rows, heads, hd, pos0, t, &pool);
  std::vector<float> ref(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < hd; ++j) {
        const int64_t jj = j % (hd / 2);
        const double ang = double(pos0 + r) / std::pow(500000.0, 2.0 * jj / hd);
        const float* v = &x[(r * heads + h) * hd];
        const double rot = j < hd / 2 ? -v[j + hd / 2] : v[j - hd / 2];
        ref[(r * heads + h) * hd + j] = float(v[j] * std::cos(ang) + rot * std::sin(ang));
      }
  CHECK_MSG(difflm_test::rel_l2(y, ref) <= 1e-5, "err " << difflm_test::rel_l2(y, ref));
}

TEST(swiglu_and_add_match_reference) {
  std::mt19937 rng(9);
  const int64_t n = 1001;
  auto g = difflm_test::random_floats(n, rng, 4.f), u = difflm_test::random_floats(n, rng);
  std::vector<float> out(n, NAN), ref(n);
  swiglu(g.data(), u.data(), out.data(), n, nullptr);
  for (int64_t i = 0; i < n; ++i) ref[i] = float(g[i] / (1.0 + std::exp(-double(g[i]))) * u[i]);
  CHECK(difflm_test::rel_l2(out, ref) <= 1e-6);
  // Element by element on both sides of 0, in every vector lane and the tail, and the edges:
  // huge gates, signed zeros, infinities (silu(-inf) = -inf * 0 is NaN, as in PyTorch), NaN.
  std::vector<float> gs = {0.f, -0.f, 1e30f, -1e30f, 88.f, -88.f, INFINITY, -INFINITY, NAN};
  for (int i = 0; i < 200; ++i) gs.push_back(-20.f + 0.2f * static_cast<float>(i) + 0.013f);
  std::vector<float> ones(gs.size(), 1.f), o(gs.size(), 7.f);
  swiglu(gs.data(), ones.data(), o.data(), static_cast<int64_t>(gs.size()), nullptr);
  for (size_t i = 0; i < gs.size(); ++i) {
    const double x = gs[i], want = x / (1.0 + std::exp(-x));
    if (std::isnan(want)) {
      CHECK_MSG(std::isnan(o[i]), "silu(" << x << ") = " << o[i]);
    } else if (std::isinf(want)) {
      CHECK_MSG(o[i] == want, "silu(" << x << ") = " << o[i]);
    } else {
      // + 1e-35: gates below -87 give -0 (exp_nonpositive's floor), |true value| < 1e-35
      CHECK_MSG(std::fabs(o[i] - want) <= 1e-6 * std::fabs(want) + 1e-35,
                "silu(" << x << ") = " << o[i] << ", want " << want);
    }
  }
  auto a = g;
  add_inplace(a.data(), u.data(), n);
  for (int64_t i = 0; i < n; ++i) CHECK(a[i] == g[i] + u[i]);
}

TEST(attention_bidirectional_causal_and_grouped_kv) {
  std::mt19937 rng(10);
  ThreadPool pool(2);
  struct Shape {
    int64_t nq, nk, heads, kv_heads, hd, q_pos0;
    bool causal;
  };
  const Shape shapes[] = {{5, 5, 2, 2, 6, 0, false},
                          {7, 7, 6, 2, 10, 0, true},
                          {3, 11, 4, 1, 8, 8, true},
                          {13, 13, 3, 3, 5, 0, false},
                          {1, 9, 4, 2, 16, 8, false}};
  for (const Shape& s : shapes) {
    auto q = difflm_test::random_floats(s.nq * s.heads * s.hd, rng);
    auto k = difflm_test::random_floats(s.nk * s.kv_heads * s.hd, rng);
    auto v = difflm_test::random_floats(s.nk * s.kv_heads * s.hd, rng);
    std::vector<float> out(q.size(), NAN), ref(q.size());
    attention(q.data(), k.data(), v.data(), out.data(), s.nq, s.nk, s.heads, s.kv_heads, s.hd,
              s.q_pos0, s.causal, &pool);
    const int64_t group = s.heads / s.kv_heads;
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.nq; ++i) {
        const int64_t keys = s.causal ? std::min(s.nk, s.q_pos0 + i + 1) : s.nk;
        std::vector<double> p(keys);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < keys; ++j) {
          double d = 0;
          for (int64_t e = 0; e < s.hd; ++e)
            d += double(q[(i * s.heads + h) * s.hd + e]) *
                 k[(j * s.kv_heads + h / group) * s.hd + e];
          p[j] = d / std::sqrt(double(s.hd));
          mx = std::max(mx, p[j]);
        }
        for (auto& x : p) sum += (x = std::exp(x - mx));
        for (int64_t e = 0; e < s.hd; ++e) {
          double o = 0;
          for (int64_t j = 0; j < keys; ++j)
            o += p[j] / sum * v[(j * s.kv_heads + h / group) * s.hd + e];
          ref[(i * s.heads + h) * s.hd + e] = float(o);
        }
      }
    CHECK_MSG(difflm_test::rel_l2(out, ref) <= 1e-5,
              "nq " << s.nq << " heads " << s.heads << " causal " << s.causal);
  }
}

TEST(embedding_gather_each_dtype) {
  const int64_t V = 11, D = 5;
  std::vector<float> t(V * D);
  for (int64_t i = 0; i < V * D; ++i) t[i] = float(i) * 0.25f;  // exact in bf16 and f16
  std::vector<uint16_t> tb(V * D), th(V * D);
  for (int64_t i = 0; i < V * D; ++i) tb[i] = f32_to_bf16(t[i]), th[i] = f32_to_f16(t[i]);
  const int32_t ids[] = {3, 0, 10, 3};
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    const void* p = dt == DType::F32    ? static_cast<const void*>(t.data())
                    : dt == DType::BF16 ? static_cast<const void*>(tb.data())
                                        : static_cast<const void*>(th.data());
    std::vector<float> out(4 * D);
    embedding_gather(p, dt, D, ids, 4, out.data());
    for (int i = 0; i < 4; ++i)
      for (int d = 0; d < D; ++d) CHECK(out[i * D + d] == t[ids[i] * D + d]);
  }
}

TEST(half_precision_conversions_round_trip) {
  // Every finite half converts to float and back unchanged; bf16 rounds to nearest even.
  int bad = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 0x1f) == 0x1f) continue;  // inf / NaN
    if (f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))) != h) ++bad;
  }
  CHECK_MSG(bad == 0, bad << " halves did not round-trip");
  CHECK(f16_to_f32(0x3c00) == 1.0f);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_f32(f32_to_bf16(1.00390625f)) == 1.0f);  // tie rounds to even
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}
