// GPU check of Dream's candidate kernel (cuda/dream_sample.cu) against its CPU twin,
// dream_sample_row (decode/dream.h), on the same logits: tokens exact, confidence within 1e-9
// (relative, or absolute below 1); rows at committed positions skipped; NaN an error. Then a
// timing at Dream-7B's vocabulary.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <string>

#include "check.h"
#include "decode/confidence.h"
#include "decode/dream.h"
#include "decode/masked.h"
#include "dream_boundary.h"
#include "errors.h"
#include "kernels.h"

using namespace difflm_gpu;
using difflm::DreamAlg;

namespace {

constexpr int32_t kMask = 7;

// One configuration: the kernel on `rows` rows at canvas positions 0..rows-1 (those flagged in
// `committed` hold another token than the mask) against dream_sample_row row by row.
void check_dream_rows(const std::vector<float>& logits, int64_t rows, int64_t vocab,
                      const difflm::cuda::DreamParams& p, const std::string& what,
                      const std::vector<uint8_t>& committed = {}) {
  std::vector<int32_t> canvas(rows, kMask);
  for (size_t i = 0; i < committed.size(); ++i)
    if (committed[i]) canvas[i] = kMask + 1;
  std::vector<int64_t> positions(rows);
  for (int64_t r = 0; r < rows; ++r) positions[r] = r;
  DeviceBuffer dl(logits.size() * 4), dpos(rows * 8), dcanvas(rows * 4), dtok(rows * 4),
      dconf(rows * 8);
  dl.upload(logits.data(), logits.size() * 4);
  dpos.upload(positions.data(), rows * 8);
  dcanvas.upload(canvas.data(), rows * 4);
  dtok.poison();
  dconf.poison();
  difflm::cuda::DreamParams q = p;
  q.canvas = dcanvas.as<int32_t>();
  q.mask_id = kMask;
  difflm::cuda::dream_rows(dl.as<float>(), rows, vocab, dpos.as<int64_t>(), q, dtok.as<int32_t>(),
                           dconf.as<double>(), nullptr);
  const auto tok = download_vec<int32_t>(dtok, rows);
  const auto conf = download_vec<double>(dconf, rows);
  difflm::MaskedRequest req;
  req.sampler = difflm::Sampler::Dream;
  req.temperature = p.temperature, req.seed = p.seed;
  req.filter.top_k = p.top_k, req.filter.top_p = p.top_p;
  req.alg = static_cast<DreamAlg>(p.alg), req.alg_temp = p.alg_temp;
  bool ok = true;
  std::string detail;
  std::vector<float> after(logits.size());
  CK(cudaMemcpy(after.data(), dl.get(), after.size() * 4, cudaMemcpyDeviceToHost));
  for (int64_t r = 0; r < rows; ++r) {
    if (canvas[r] != kMask) continue;  // unspecified outputs; checked below to be untouched
    const difflm::Candidate c = difflm::dream_sample_row(&logits[r * vocab], vocab, req, p.step, r);
    const double tol = 1e-9 * std::max(1.0, std::fabs(c.confidence));
    if (tok[r] != c.token || !(std::fabs(conf[r] - c.confidence) <= tol)) {
      ok = false;
      detail += "row " + std::to_string(r) + ": token " + std::to_string(tok[r]) + " vs " +
                std::to_string(c.token) + ", confidence " + std::to_string(conf[r]) + " vs " +
                std::to_string(c.confidence) + "; ";
    }
  }
  if (after != logits) ok = false, detail += "the logits were written";
  expect(what, ok, detail);
  if (!committed.empty()) {
    // Committed rows keep the poison (0xff bytes) in both outputs.
    bool untouched = true;
    for (int64_t r = 0; r < rows; ++r)
      if (canvas[r] != kMask) untouched = untouched && tok[r] == -1;
    expect(what + ": committed rows skipped", untouched);
  }
}

}  // namespace

GPU_CASE(dream_rows) {
  std::mt19937 rng(107);
  struct Filter {
    double top_p;
    int64_t top_k;
  };
  const Filter filters[] = {{1.0, 0}, {0.9, 0}, {1.0, 5}, {0.95, 20}};
  for (int64_t vocab : {int64_t{320}, difflm::kConfidenceSegment + 1}) {
    const int64_t rows = 6;
    auto logits = random_floats(rows * vocab, rng, 3.f);
    // Row 1: a tie of two maxima (margin 0, first index wins); row 2: all -inf but three;
    // row 3: one token far ahead (top-p keeps it alone); row 4: rising over the segments.
    logits[1 * vocab + 3] = logits[1 * vocab + vocab - 5] = 20.f;
    for (int64_t v = 3; v < vocab; ++v) logits[2 * vocab + v] = -INFINITY;
    logits[3 * vocab + vocab / 2] = 30.f;
    for (int64_t v = 0; v < vocab; ++v) logits[4 * vocab + v] += 20.f * float(v) / float(vocab);
    for (double T : {0.0, 0.8})
      for (const Filter& f : filters)
        for (int alg = 0; alg < 5; ++alg)
          for (double alg_temp : {0.0, 0.5}) {
            if (alg == 0 && alg_temp > 0) continue;  // origin has no alg_temp
            difflm::cuda::DreamParams p;
            p.temperature = T, p.seed = 0xabcdef12345ull + alg, p.step = 2 + alg;
            p.top_p = f.top_p, p.top_k = f.top_k, p.alg = alg, p.alg_temp = alg_temp;
            check_dream_rows(logits, rows, vocab, p,
                             "dream_rows V " + std::to_string(vocab) + " T " + std::to_string(T) +
                                 " top-p " + std::to_string(f.top_p) + " top-k " +
                                 std::to_string(f.top_k) + " alg " + std::to_string(alg) +
                                 " alg_temp " + std::to_string(alg_temp),
                             vocab == 320 && alg == 3 ? std::vector<uint8_t>{0, 1, 0, 0, 1, 0}
                                                      : std::vector<uint8_t>{});
          }
  }
  // Spread like a trained model's logits (normal, sigma 10) at Dream's vocabulary (152064).
  {
    const int64_t vocab = 152064, rows = 3;
    std::normal_distribution<float> nd(0.f, 10.f);
    std::vector<float> logits(rows * vocab);
    for (auto& x : logits) x = nd(rng);
    for (int alg : {1, 3}) {
      difflm::cuda::DreamParams p;
      p.temperature = alg == 1 ? 0.0 : 0.2, p.top_p = 0.95, p.alg = alg, p.seed = 9;
      check_dream_rows(logits, rows, vocab, p,
                       "dream_rows sigma 10 V 152064 alg " + std::to_string(alg));
    }
  }
  // Dream's top-p rule where it differs from Hugging Face's (mass before the token exactly p).
  {
    const difflm_test::TopPBoundary b = difflm_test::dream_top_p_boundary(320);
    expect("dream_rows: a top-p boundary row was found", b.p > 0);
    difflm::cuda::DreamParams p;
    p.top_p = b.p, p.alg = static_cast<int>(DreamAlg::MaskgitPlus);
    check_dream_rows(b.logits, 1, 320, p,
                     "dream_rows: top-p keeps the token whose mass before is p");
  }
  // NaN: an error naming the canvas position and the token.
  {
    const int64_t vocab = 320, rows = 2;
    auto logits = random_floats(rows * vocab, rng);
    logits[vocab + 17] = std::numeric_limits<float>::quiet_NaN();
    DeviceBuffer dl(logits.size() * 4), dpos(rows * 8), dtok(rows * 4), dconf(rows * 8);
    dl.upload(logits.data(), logits.size() * 4);
    const int64_t positions[] = {4, 9};
    dpos.upload(positions, sizeof positions);
    std::string msg;
    try {
      difflm::cuda::dream_rows(dl.as<float>(), rows, vocab, dpos.as<int64_t>(), {},
                               dtok.as<int32_t>(), dconf.as<double>(), nullptr);
    } catch (const difflm::EngineError& e) {
      msg = e.what();
    }
    expect("dream_rows: NaN is an error naming position and token",
           msg.find("canvas position 9") != std::string::npos &&
               msg.find("token 17") != std::string::npos,
           msg);
    // A temperature so small that logit / temperature overflows: the CPU's error.
    logits[vocab + 17] = 1.f;
    dl.upload(logits.data(), logits.size() * 4);
    difflm::cuda::DreamParams p;
    p.temperature = 1e-40, p.top_p = 0.9, p.top_k = 5;
    msg.clear();
    try {
      difflm::cuda::dream_rows(dl.as<float>(), rows, vocab, dpos.as<int64_t>(), p,
                               dtok.as<int32_t>(), dconf.as<double>(), nullptr);
    } catch (const difflm::EngineError& e) {
      msg = e.what();
    }
    expect("dream_rows: logit / temperature overflowing float32 is the CPU's error",
           msg.find("too small for these logits") != std::string::npos &&
               msg.find("canvas position 4") != std::string::npos,
           msg);
  }
}

// Timing: 256 masked rows at Dream-7B's vocabulary, entropy with top-p 0.95 (its demos); the
// same without top-p (the difference: the top-p select's share); and at temperature 0 (no
// Gumbel draw either).
GPU_CASE_LARGE(dream_rows_timing) {
  std::mt19937 rng(108);
  const int64_t vocab = 152064, rows = 256;
  DeviceBuffer dl(rows * vocab * 4), dpos(rows * 8), dtok(rows * 4), dconf(rows * 8);
  const auto logits = random_floats(rows * vocab, rng, 3.f);
  dl.upload(logits.data(), logits.size() * 4);
  std::vector<int64_t> positions(rows);
  for (int64_t r = 0; r < rows; ++r) positions[r] = r;
  dpos.upload(positions.data(), rows * 8);
  struct Setting {
    const char* name;
    double temperature, top_p;
  };
  for (const Setting& st :
       {Setting{"dream_rows T0.2 p0.95 entropy", 0.2, 0.95},
        Setting{"dream_rows T0.2 entropy", 0.2, 1.0}, Setting{"dream_rows T0 entropy", 0.0, 1.0}}) {
    difflm::cuda::DreamParams p;
    p.temperature = st.temperature, p.top_p = st.top_p, p.alg = 3;
    const double ms = time_ms([&] {
      difflm::cuda::dream_rows(dl.as<float>(), rows, vocab, dpos.as<int64_t>(), p,
                               dtok.as<int32_t>(), dconf.as<double>(), nullptr);
    });
    report(st.name, "256 x 152064", ms, 0, 4.0 * rows * vocab);
  }
}
