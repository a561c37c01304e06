// GPU checks of the norm, rotary, elementwise and sampling kernels against their CPU twins
// (cpu/ops.h, decode/masked.h), then timings at LLaDA-8B shapes (d 4096, 32 heads of 128,
// MLP 12288, vocab 126464). Tolerances, and why:
//  - rmsnorm, rope, add, embedding: 1e-5 rel L2 is what was asked; they are in fact within an
//    ulp (rmsnorm: float64 sum order) or bit-identical (rope, add, embedding). 16-bit weights and
//    tables are fed to both sides as the same bits, so the bound stays tight.
//  - swiglu: bit-identical (silu.h, shared with the CPU), checked exactly as well as at 1e-5.
//  - sample_rows: tokens exact (same Philox draws; see sample.cu), confidence 1e-9 relative
//    (float64 sums in another order), in-place EOS/EOT writes bit-exact.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "check.h"
#include "cpu/ops.h"
#include "decode/confidence.h"
#include "decode/masked.h"
#include "dtype.h"
#include "errors.h"
#include "kernels.h"
#include "sample_compare.h"

using namespace difflm_gpu;
using difflm::DType;

namespace {

// Host bits of `src` in dtype dt, and the float32 values those bits stand for.
struct Typed {
  std::vector<float> f32;
  std::vector<uint16_t> bits;
  DType dt;
  const void* data() const {
    return dt == DType::F32 ? static_cast<const void*>(f32.data())
                            : static_cast<const void*>(bits.data());
  }
  size_t bytes() const { return f32.size() * difflm::dtype_size(dt); }
};
Typed typed(const std::vector<float>& src, DType dt) {
  Typed t{src, {}, dt};
  if (dt == DType::F32) return t;
  t.bits.resize(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    t.bits[i] = dt == DType::BF16 ? difflm::f32_to_bf16(src[i]) : difflm::f32_to_f16(src[i]);
    t.f32[i] = dt == DType::BF16 ? difflm::bf16_to_f32(t.bits[i]) : difflm::f16_to_f32(t.bits[i]);
  }
  return t;
}
const DType kDtypes[] = {DType::F32, DType::BF16, DType::F16};

std::string shape(std::initializer_list<int64_t> dims) {
  std::string s;
  for (int64_t d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

}  // namespace

GPU_CASE(rmsnorm) {
  std::mt19937 rng(101);
  for (int64_t dim : {1, 129, 4096})
    for (DType dt : kDtypes) {
      const int64_t rows = 7;
      const auto x = random_floats(rows * dim, rng, 3.f);
      const Typed w = typed(random_floats(dim, rng), dt);
      std::vector<float> want(rows * dim);
      difflm::rmsnorm(x.data(), rows, dim, w.data(), dt, 1e-5f, want.data(), nullptr);
      DeviceBuffer dx(x.size() * 4), dw(w.bytes()), dout(x.size() * 4);
      dx.upload(x.data(), x.size() * 4);
      dw.upload(w.data(), w.bytes());
      dout.poison();
      difflm::cuda::rmsnorm(dx.as<float>(), rows, dim, dw.get(), dt, 1e-5f, dout.as<float>(),
                            nullptr);
      validate("rmsnorm " + shape({rows, dim}) + " " + difflm::dtype_name(dt),
               download_vec<float>(dout, x.size()), want, 1e-5);
    }
  const int64_t rows = 2048, dim = 4096;
  DeviceBuffer dx(rows * dim * 4), dw(dim * 2), dout(rows * dim * 4);
  const auto x = random_floats(rows * dim, rng);
  dx.upload(x.data(), x.size() * 4);
  const Typed w = typed(random_floats(dim, rng), DType::BF16);
  dw.upload(w.data(), w.bytes());
  const double ms = time_ms([&] {
    difflm::cuda::rmsnorm(dx.as<float>(), rows, dim, dw.get(), DType::BF16, 1e-5f, dout.as<float>(),
                          nullptr);
  });
  report("rmsnorm bf16 w", shape({rows, dim}), ms, 3.0 * rows * dim, 8.0 * rows * dim + 2 * dim);
}

GPU_CASE(rope) {
  std::mt19937 rng(102);
  struct S {
    int64_t rows, heads, hd, pos0;
  };
  for (S s : {S{13, 3, 10, 21}, S{37, 5, 128, 0}, S{2048, 32, 128, 7}}) {
    const int64_t half = s.hd / 2, max_pos = s.pos0 + s.rows + 3;
    std::vector<float> tab(2 * max_pos * half);
    difflm::RopeTable t{max_pos, half, tab.data(), tab.data() + max_pos * half};
    difflm::rope_fill(t, 500000.0);
    const auto x = random_floats(s.rows * s.heads * s.hd, rng);
    auto want = x;
    difflm::rope_apply(want.data(), s.rows, s.heads, s.hd, s.pos0, t, nullptr);
    DeviceBuffer dx(x.size() * 4), dtab(tab.size() * 4);
    dx.upload(x.data(), x.size() * 4);
    dtab.upload(tab.data(), tab.size() * 4);
    const float* dcos = dtab.as<float>();
    const float* dsin = dtab.as<float>() + max_pos * half;
    difflm::cuda::rope(dx.as<float>(), s.rows, s.heads, s.hd, s.pos0, dcos, dsin, nullptr);
    validate("rope " + shape({s.rows, s.heads, s.hd}) + " pos0 " + std::to_string(s.pos0),
             download_vec<float>(dx, x.size()), want, 1e-5);
    if (s.rows == 2048) {  // in place: timing keeps rotating the same buffer, which is fine
      const double ms = time_ms([&] {
        difflm::cuda::rope(dx.as<float>(), s.rows, s.heads, s.hd, s.pos0, dcos, dsin, nullptr);
      });
      report("rope", shape({s.rows, s.heads, s.hd}), ms, 6.0 * x.size() / 2,
             8.0 * x.size() + 4.0 * s.rows * s.hd);
    }
  }
}

GPU_CASE(swiglu_add) {
  std::mt19937 rng(103);
  for (int64_t n : {1, 1001, 3 * 12288 + 5}) {
    const auto g = random_floats(n, rng, 4.f), u = random_floats(n, rng);
    std::vector<float> want(n), want_add = g;
    difflm::swiglu(g.data(), u.data(), want.data(), n, nullptr);
    difflm::add_inplace(want_add.data(), u.data(), n);
    // One float of offset makes the pointers 4- but not 16-byte aligned: the scalar path of add.
    for (int64_t off : {0, 1}) {
      DeviceBuffer dg((n + 1) * 4), du((n + 1) * 4), dout((n + 1) * 4);
      float* pg = dg.as<float>() + off;
      float* pu = du.as<float>() + off;
      CK(cudaMemcpy(pg, g.data(), n * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(pu, u.data(), n * 4, cudaMemcpyHostToDevice));
      dout.poison();
      difflm::cuda::swiglu(pg, pu, dout.as<float>(), n, nullptr);
      const auto got_sw = download_vec<float>(dout, n);
      validate("swiglu n " + std::to_string(n), got_sw, want, 1e-5);
      expect("swiglu n " + std::to_string(n) + " bit-identical to the CPU",
             std::memcmp(got_sw.data(), want.data(), n * sizeof(float)) == 0);
      difflm::cuda::add(pg, pu, n, nullptr);
      std::vector<float> got(n);
      CK(cudaMemcpy(got.data(), pg, n * 4, cudaMemcpyDeviceToHost));
      validate("add n " + std::to_string(n) + " offset " + std::to_string(off), got, want_add,
               1e-5);
      // out aliasing gate, as the engine calls it.
      CK(cudaMemcpy(pg, g.data(), n * 4, cudaMemcpyHostToDevice));
      difflm::cuda::swiglu(pg, pu, pg, n, nullptr);
      CK(cudaMemcpy(got.data(), pg, n * 4, cudaMemcpyDeviceToHost));
      validate("swiglu in place n " + std::to_string(n), got, want, 1e-5);
    }
  }
  const int64_t n = 2048LL * 12288;
  DeviceBuffer da(n * 4), db(n * 4), dc(n * 4);
  const auto a = random_floats(n, rng);
  da.upload(a.data(), n * 4);
  db.upload(a.data(), n * 4);
  double ms = time_ms(
      [&] { difflm::cuda::swiglu(da.as<float>(), db.as<float>(), dc.as<float>(), n, nullptr); });
  report("swiglu", shape({2048, 12288}), ms, 5.0 * n, 12.0 * n);
  ms = time_ms([&] { difflm::cuda::add(dc.as<float>(), db.as<float>(), n, nullptr); });
  report("add", shape({2048, 12288}), ms, 1.0 * n, 12.0 * n);
}

GPU_CASE(add_bias) {
  // Dream's q/k/v biases: rows of 3584 (q) and 512 (k, v) at Dream-7B's width, and odd sizes.
  std::mt19937 rng(106);
  for (const auto& [rows, dim] :
       {std::pair<int64_t, int64_t>{1, 1}, {7, 129}, {33, 512}, {5, 3584}})
    for (DType dt : kDtypes) {
      const auto x = random_floats(rows * dim, rng, 2.f);
      const Typed b = typed(random_floats(dim, rng), dt);
      std::vector<float> want = x;
      difflm::add_bias_rows(want.data(), 0, rows, dim, b.data(), dt);
      DeviceBuffer dx(x.size() * 4), db(b.bytes());
      dx.upload(x.data(), x.size() * 4);
      db.upload(b.data(), b.bytes());
      difflm::cuda::add_bias(dx.as<float>(), rows, dim, db.get(), dt, nullptr);
      const auto got = download_vec<float>(dx, x.size());
      const std::string name = "add_bias " + shape({rows, dim}) + " " + difflm::dtype_name(dt);
      validate(name, got, want, 1e-5);
      expect(name + " bit-identical to the CPU",
             std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }
}

GPU_CASE(embedding) {
  std::mt19937 rng(104);
  const int64_t vocab = 1000, dim = 77, n = 37;
  const auto src = random_floats(vocab * dim, rng);
  std::vector<int32_t> ids(n);
  std::uniform_int_distribution<int32_t> pick(0, vocab - 1);
  for (auto& id : ids) id = pick(rng);
  ids[0] = 0, ids[1] = vocab - 1;  // both ends of the table
  DeviceBuffer dids(n * 4), dout(n * dim * 4);
  dids.upload(ids.data(), n * 4);
  for (DType dt : kDtypes) {
    const Typed t = typed(src, dt);
    std::vector<float> want(n * dim);
    difflm::embedding_gather(t.data(), dt, dim, ids.data(), n, want.data());
    DeviceBuffer dt_buf(t.bytes());
    dt_buf.upload(t.data(), t.bytes());
    dout.poison();
    difflm::cuda::embedding(dt_buf.get(), dt, dim, dids.as<int32_t>(), n, dout.as<float>(),
                            nullptr);
    validate(std::string("embedding ") + difflm::dtype_name(dt), download_vec<float>(dout, n * dim),
             want, 1e-5);
  }
  // LLaDA-8B: 2048 tokens from a bf16 table of 126464 x 4096 (1 GB; only the rows read matter).
  const int64_t V = 126464, D = 4096, N = 2048;
  DeviceBuffer table(V * D * 2), big_ids(N * 4), big_out(N * D * 4);
  CK(cudaMemset(table.get(), 0x3f, table.bytes()));
  std::vector<int32_t> bid(N);
  std::uniform_int_distribution<int32_t> pickV(0, V - 1);
  for (auto& id : bid) id = pickV(rng);
  big_ids.upload(bid.data(), N * 4);
  const double ms = time_ms([&] {
    difflm::cuda::embedding(table.get(), DType::BF16, D, big_ids.as<int32_t>(), N,
                            big_out.as<float>(), nullptr);
  });
  report("embedding bf16", shape({N, D}), ms, 0, 6.0 * N * D);
}

namespace {}  // namespace

GPU_CASE(sample_rows) {
  std::mt19937 rng(105);
  for (int64_t vocab : {int64_t{320}, difflm::kConfidenceSegment, difflm::kConfidenceSegment + 1,
                        int64_t{50257}, int64_t{126464}}) {
    const int64_t rows = 7;
    auto logits = random_floats(rows * vocab, rng, 3.f);
    const int32_t eos = static_cast<int32_t>(vocab / 3), eot = static_cast<int32_t>(vocab - 2);
    // Row 0: EOS is the clear max; row 1: EOT is; row 2: a tie of two maxima (first must win);
    // row 3: every other logit -inf (skipped by the Gumbel loop and the softmax sum).
    logits[0 * vocab + eos] = 40.f;
    logits[1 * vocab + eot] = 40.f;
    logits[2 * vocab + 5] = logits[2 * vocab + vocab - 7] = 30.f;
    for (int64_t v = 0; v < vocab; v += 2) logits[3 * vocab + v] = -INFINITY;
    // Row 4: rising logits, so each confidence segment (decode/confidence.h) raises the running
    // max, over a range wide enough (60) that the Gumbel draw skips most tokens as hopeless;
    // row 5: the first two segments all -inf (only the last 3 tokens left when shorter).
    for (int64_t v = 0; v < vocab; ++v) logits[4 * vocab + v] += 60.f * float(v) / float(vocab);
    for (int64_t v = 0; v < std::min(vocab - 3, 2 * difflm::kConfidenceSegment); ++v)
      logits[5 * vocab + v] = -INFINITY;
    // Row 6: every logit -inf (token 0, confidence 0, at any temperature).
    for (int64_t v = 0; v < vocab; ++v) logits[6 * vocab + v] = -INFINITY;
    for (double T : {0.0, 0.7})
      for (int flags = 0; flags < 4; ++flags) {
        difflm::cuda::SampleParams p;
        p.temperature = T, p.seed = 0x1234567890abcdefull + flags, p.step = 3 + flags;
        p.eos_id = eos, p.eot_id = eot;
        p.logits_eos_inf = flags & 1, p.confidence_eos_eot_inf = flags & 2;
        check_sample_rows(logits, rows, vocab, p,
                          "sample_rows V " + std::to_string(vocab) + " T " + std::to_string(T) +
                              " eosinf " + std::to_string(flags & 1) + " confinf " +
                              std::to_string(flags >> 1));
      }
    difflm::cuda::SampleParams p;
    p.temperature = 0.7, p.want_confidence = false, p.eos_id = eos;
    check_sample_rows(logits, rows, vocab, p,
                      "sample_rows V " + std::to_string(vocab) + " no confidence");
  }
  // Logits spread like a trained model's (normal, sigma 10) over LLaDA's vocabulary: the Gumbel
  // draw prunes with the block's best so far between segments and skips the logarithms by each
  // draw's noise bound; the tokens must still be the CPU's. Then the same rows with some
  // positions already committed, which the kernel must skip.
  {
    const int64_t vocab = 126464, rows = 6;
    std::normal_distribution<float> nd(0.f, 10.f);
    std::vector<float> logits(rows * vocab);
    for (auto& x : logits) x = nd(rng);
    for (double T : {0.0, 0.3, 0.7, 1.5})
      for (int committed = 0; committed < 2; ++committed) {
        difflm::cuda::SampleParams p;
        p.temperature = T, p.seed = 77 + committed, p.step = 2;
        p.eos_id = 126081, p.eot_id = 126348, p.confidence_eos_eot_inf = true;
        check_sample_rows(
            logits, rows, vocab, p,
            "sample_rows sigma 10 V 126464 T " + std::to_string(T) +
                (committed ? " committed rows skipped" : ""),
            committed ? std::vector<uint8_t>{1, 0, 1, 1, 0, 1} : std::vector<uint8_t>{});
      }
  }
  // EOS and EOT the same token, and that token 0 (also the fallback of an all -inf row).
  {
    const int64_t vocab = 1000, rows = 3;
    auto logits = random_floats(rows * vocab, rng, 3.f);
    logits[0] = 10.f;
    for (int64_t v = 0; v < vocab; ++v) logits[2 * vocab + v] = -INFINITY;
    for (int32_t id : {0, 500})
      for (double T : {0.0, 0.7})
        for (int flags = 0; flags < 4; ++flags) {
          difflm::cuda::SampleParams p;
          p.temperature = T, p.seed = 5, p.step = 1, p.eos_id = p.eot_id = id;
          p.logits_eos_inf = flags & 1, p.confidence_eos_eot_inf = flags & 2;
          check_sample_rows(logits, rows, vocab, p,
                            "sample_rows eos = eot = " + std::to_string(id) + " T " +
                                std::to_string(T) + " flags " + std::to_string(flags));
        }
  }
  // NaN or +inf: must throw EngineError(Internal) naming the canvas position, like the CPU (also
  // when it lies past the first confidence segment), with and without top-k / top-p.
  difflm::cuda::SampleParams nan_params[3];
  nan_params[1].temperature = 0.7, nan_params[1].top_p = 0.9;
  nan_params[2].temperature = 0.7, nan_params[2].top_k = 20;
  for (const auto& np : nan_params)
    for (const float bad : {NAN, INFINITY})
      for (const int64_t vocab : {int64_t{1001}, 3 * difflm::kConfidenceSegment}) {
        const int64_t rows = 3;
        const int64_t nan_at = vocab == 1001 ? 17 : 2 * difflm::kConfidenceSegment + 17;
        auto logits = random_floats(rows * vocab, rng);
        logits[2 * vocab + nan_at] = bad;
        const std::string word = std::isnan(bad) ? "NaN" : "+inf";
        DeviceBuffer dl(logits.size() * 4), dpos(rows * 8), dtok(rows * 4), dconf(rows * 8);
        dl.upload(logits.data(), logits.size() * 4);
        const std::vector<int64_t> pos = {40, 41, 42};
        dpos.upload(pos.data(), rows * 8);
        std::string msg;
        try {
          difflm::cuda::sample_rows(dl.as<float>(), rows, vocab, dpos.as<int64_t>(), np,
                                    dtok.as<int32_t>(), dconf.as<double>(), nullptr);
        } catch (const difflm::EngineError& e) {
          msg = e.code() == difflm::ErrorCode::Internal ? e.what() : "wrong code";
        }
        expect("sample_rows " + word + " throws (V " + std::to_string(vocab) + ", T " +
                   std::to_string(np.temperature) + ", k " + std::to_string(np.top_k) + ", p " +
                   std::to_string(np.top_p) + ")",
               msg.find("position 42 contain " + word + " (token " + std::to_string(nan_at) +
                        ")") != std::string::npos,
               "got \"" + msg + "\"");
      }
  // Timing at LLaDA-8B: 126464-wide rows; the bytes are the logits read once.
  // Flat logits (uniform in [-3, 3]: the Gumbel draw can skip almost nothing) and logits spread
  // like a trained model's (normal, sigma 10).
  const int64_t V = 126464;
  const auto one_row = random_floats(V, rng, 3.f);
  std::normal_distribution<float> nd(0.f, 10.f);
  std::vector<float> wide_row(V);
  for (auto& x : wide_row) x = nd(rng);
  // Rows: 256 (one partial wave); 2048 (7.76 waves of two 512-thread blocks an SM on 132 SMs,
  // so the last wave leaves a quarter of the GPU idle); 16 per SM (eight full waves: the kernel
  // without that tail).
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  for (int64_t rows : {int64_t{256}, int64_t{2048}, int64_t{16} * sms}) {
    DeviceBuffer dl(rows * V * 4), dw(rows * V * 4), dpos(rows * 8), dtok(rows * 4),
        dconf(rows * 8);
    for (int64_t r = 0; r < rows; ++r) {
      CK(cudaMemcpy(dl.as<float>() + r * V, one_row.data(), V * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dw.as<float>() + r * V, wide_row.data(), V * 4, cudaMemcpyHostToDevice));
    }
    std::vector<int64_t> pos(rows);
    for (int64_t r = 0; r < rows; ++r) pos[r] = r;
    dpos.upload(pos.data(), rows * 8);
    // T=0 without the confidence (argmax only) shows what the memory side alone allows.
    for (int variant = 0; variant < 4; ++variant) {
      difflm::cuda::SampleParams p;
      p.temperature = variant >= 2 ? 0.7 : 0.0, p.want_confidence = variant != 1;
      p.eos_id = 126081, p.eot_id = 126348, p.confidence_eos_eot_inf = true;
      float* logits = variant == 3 ? dw.as<float>() : dl.as<float>();
      const double ms = time_ms([&] {
        difflm::cuda::sample_rows(logits, rows, V, dpos.as<int64_t>(), p, dtok.as<int32_t>(),
                                  dconf.as<double>(), nullptr);
      });
      const char* name[] = {"sample_rows T=0", "sample_rows T=0 argmax only", "sample_rows T=0.7",
                            "sample_rows T=0.7 sigma-10 logits"};
      report(name[variant], shape({rows, V}), ms, 0, 4.0 * rows * V);
    }
  }
}
