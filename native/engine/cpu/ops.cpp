#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "exp_nonpositive.h"
#include "gemm.h"
#include "silu.h"
#include "thread_pool.h"

namespace difflm {

namespace {

void maybe_parallel(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn) {
  if (pool)
    pool->parallel_for(n, grain, fn);
  else
    fn(0, n);
}

}  // namespace

namespace {

// One RMSNorm row. The sum of squares runs in float64 over 8 lanes (so it vectorizes; float sums
// do not reassociate on their own), then out = (x * scale) * w with w widened per dtype.
template <DType WT>
__attribute__((target_clones("avx512f", "avx2", "default"))) void rmsnorm_row(
    const float* x, int64_t dim, const void* w, float eps, float* out) {
  constexpr int kLanes = 8;
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<double>(x[i + l]) * x[i + l];
  double ss = 0;
  for (; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  for (const double v : lane) ss += v;
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
  for (i = 0; i < dim; ++i) {
    float wi;
    if constexpr (WT == DType::F32) {
      wi = static_cast<const float*>(w)[i];
    } else if constexpr (WT == DType::BF16) {
      wi = bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
    } else {
      wi = f16_to_f32(static_cast<const uint16_t*>(w)[i]);
    }
    out[i] = (x[i] * scale) * wi;
  }
}

}  // namespace

void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
             float* out, ThreadPool* pool) {
  auto row = wt == DType::F32    ? rmsnorm_row<DType::F32>
             : wt == DType::BF16 ? rmsnorm_row<DType::BF16>
                                 : rmsnorm_row<DType::F16>;
  maybe_parallel(pool, rows, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) row(x + r * dim, dim, w, eps, out + r * dim);
  });
}

void rope_fill(RopeTable& t, double theta) {
  const float th = static_cast<float>(theta);
  const float dim = static_cast<float>(2 * t.half);
  for (int64_t j = 0; j < t.half; ++j) {
    const float inv_freq = 1.0f / std::pow(th, static_cast<float>(2 * j) / dim);
    for (int64_t p = 0; p < t.max_pos; ++p) {
      const float angle = static_cast<float>(p) * inv_freq;
      t.cos[p * t.half + j] = std::cos(angle);
      t.sin[p * t.half + j] = std::sin(angle);
    }
  }
}

void rope_apply(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                const RopeTable& t, ThreadPool* pool) {
  const int64_t half = head_dim / 2;
  maybe_parallel(pool, rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* c = t.cos + (pos0 + r) * t.half;
      const float* s = t.sin + (pos0 + r) * t.half;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (r * heads + h) * head_dim;
        for (int64_t j = 0; j < half; ++j) {
          const float a = v[j], b = v[j + half];
          v[j] = a * c[j] - b * s[j];
          v[j + half] = b * c[j] + a * s[j];
        }
      }
    }
  });
}

namespace {

// SwiGLU on [i0, i1), vectorized for each ISA (silu_mul is branch-free).
__attribute__((target_clones("avx512f", "fma", "default"))) void swiglu_range(
    const float* gate, const float* up, float* out, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) out[i] = silu_mul(gate[i], up[i]);
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool) {
  maybe_parallel(pool, n, 4096,
                 [&](int64_t i0, int64_t i1) { swiglu_range(gate, up, out, i0, i1); });
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void add_bias_rows(float* x, int64_t r0, int64_t r1, int64_t dim, const void* bias, DType bt) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < dim; ++j)
      x[r * dim + j] += load_as_f32(bias, bt, static_cast<size_t>(j));
}

namespace {

// out[i] = sum_j p[i][j] v[j] for one head: the probability-weighted sum of value rows, read in
// place from the [keys][kv_stride] value matrix (no transposed copy). HD > 0 fixes the head
// size so the accumulators stay in registers; HD == 0 handles any size. R rows share each value
// row's loads (the keys all of them see); a row's remaining keys (causal) are added alone.
// Compiled for AVX-512, AVX2 and baseline, chosen at load.
template <int HD, int R>
__attribute__((target_clones("avx512f", "avx2", "default"))) void weighted_values(
    const float* p, int64_t rows, int64_t keys, const int64_t* row_keys, const float* v,
    int64_t kv_stride, int64_t hd_runtime, float* out, int64_t out_stride) {
  const int64_t hd = HD > 0 ? HD : hd_runtime;
  constexpr int64_t kMax = HD > 0 ? HD : 256;
  int64_t i = 0;
  for (; i + R <= rows; i += R) {
    float acc[R][kMax] = {};
    int64_t common = row_keys[i];
    for (int r = 1; r < R; ++r) common = std::min(common, row_keys[i + r]);
    for (int64_t j = 0; j < common; ++j) {
      const float* vj = v + j * kv_stride;
      for (int r = 0; r < R; ++r) {
        const float pr = p[(i + r) * keys + j];
        for (int64_t e = 0; e < hd; ++e) acc[r][e] += pr * vj[e];
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int64_t j = common; j < row_keys[i + r]; ++j) {
        const float pr = p[(i + r) * keys + j];
        const float* vj = v + j * kv_stride;
        for (int64_t e = 0; e < hd; ++e) acc[r][e] += pr * vj[e];
      }
      float* o = out + (i + r) * out_stride;
      for (int64_t e = 0; e < hd; ++e) o[e] = acc[r][e];
    }
  }
  for (; i < rows; ++i) {
    float acc[kMax] = {};
    for (int64_t j = 0; j < row_keys[i]; ++j) {
      const float pr = p[i * keys + j];
      const float* vj = v + j * kv_stride;
      for (int64_t e = 0; e < hd; ++e) acc[e] += pr * vj[e];
    }
    float* o = out + i * out_stride;
    for (int64_t e = 0; e < hd; ++e) o[e] = acc[e];
  }
}

// Scales a row of scores and turns it into softmax probabilities in place. Lane arrays keep the
// max and sum reductions vectorizable (float sums do not reassociate on their own).
// The "fma" clone: exp_nonpositive's fmaf calls become instructions (AVX2 machines have FMA).
__attribute__((target_clones("avx512f", "fma", "default"))) void softmax_row(float* s, int64_t n,
                                                                             float scale) {
  constexpr int64_t W = 16;
  float lane[W];
  for (float& m : lane) m = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + W <= n; j += W)
    for (int64_t l = 0; l < W; ++l) {
      const float t = s[j + l] * scale;
      s[j + l] = t;
      lane[l] = t > lane[l] ? t : lane[l];
    }
  float max_s = -std::numeric_limits<float>::infinity();
  for (; j < n; ++j) max_s = std::max(max_s, s[j] *= scale);
  for (const float m : lane) max_s = std::max(max_s, m);
  for (float& a : lane) a = 0;
  j = 0;
  for (; j + W <= n; j += W)
    for (int64_t l = 0; l < W; ++l) lane[l] += (s[j + l] = exp_nonpositive(s[j + l] - max_s));
  float sum = 0;
  for (; j < n; ++j) sum += (s[j] = exp_nonpositive(s[j] - max_s));
  for (const float a : lane) sum += a;
  const float inv = 1.0f / sum;
  for (j = 0; j < n; ++j) s[j] *= inv;
}

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
               int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0, bool causal,
               ThreadPool* pool) {
  // Per (head, block of up to 64 queries): gather the head's Q and K rows into contiguous
  // buffers, scores = Q K^T on the SIMD GEMM kernels (float32 weights, so exact float32 math on
  // every path), the row softmax, then the weighted sum of value rows read in place.
  const int64_t group = n_heads / n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t q_stride = n_heads * hd, kv_stride = n_kv_heads * hd;
  constexpr int64_t kQBlock = 64;
  const int64_t q_blocks = (nq + kQBlock - 1) / kQBlock;
  const GemmPath path = gemm_default_path();
  auto task = [&](int64_t t) {
    const int64_t h = t / q_blocks, i0 = (t % q_blocks) * kQBlock;
    const int64_t rows = std::min(kQBlock, nq - i0);
    const int64_t kvh = h / group;
    // Keys visible to any query of this block (all, or up to the last query's position).
    const int64_t keys = causal ? std::min(nk, q_pos0 + i0 + rows) : nk;
    std::vector<float> qb(static_cast<size_t>(rows * hd)), kb(static_cast<size_t>(keys * hd));
    std::vector<float> sc(static_cast<size_t>(rows * keys));
    std::vector<int64_t> row_keys(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i)
      std::copy_n(q + (i0 + i) * q_stride + h * hd, hd, qb.data() + i * hd);
    for (int64_t j = 0; j < keys; ++j)
      std::copy_n(k + j * kv_stride + kvh * hd, hd, kb.data() + j * hd);
    gemm(qb.data(), rows, WeightMatrix{kb.data(), DType::F32, keys, hd}, sc.data(), nullptr, path);
    for (int64_t i = 0; i < rows; ++i) {
      row_keys[i] = causal ? std::min(keys, q_pos0 + i0 + i + 1) : keys;
      softmax_row(sc.data() + i * keys, row_keys[i], scale);
    }
    const float* vh = v + kvh * hd;
    float* oh = out + i0 * q_stride + h * hd;
    switch (hd) {
      case 32:
        weighted_values<32, 4>(sc.data(), rows, keys, row_keys.data(), vh, kv_stride, hd, oh,
                               q_stride);
        break;
      case 64:
        weighted_values<64, 4>(sc.data(), rows, keys, row_keys.data(), vh, kv_stride, hd, oh,
                               q_stride);
        break;
      case 128:
        weighted_values<128, 2>(sc.data(), rows, keys, row_keys.data(), vh, kv_stride, hd, oh,
                                q_stride);
        break;
      default:
        weighted_values<0, 1>(sc.data(), rows, keys, row_keys.data(), vh, kv_stride, hd, oh,
                              q_stride);
    }
  };
  if (pool)
    pool->run(n_heads * q_blocks, task);
  else
    for (int64_t t = 0; t < n_heads * q_blocks; ++t) task(t);
}

void embedding_gather(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                      float* out) {
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(dt);
  for (int64_t i = 0; i < n; ++i) {
    const char* row = static_cast<const char*>(table) + static_cast<size_t>(ids[i]) * row_bytes;
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = load_as_f32(row, dt, d);
  }
}

}  // namespace difflm
