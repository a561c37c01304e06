// GPU checks of top-k / top-p sampling and of threshold selection against their CPU twins
// (decode/sampling.h, decode/select.h), then timings at LLaDA-8B shapes. Everything compared is
// exact except the confidence:
//  - sample_rows with top_k / top_p: tokens exact (the kept set is defined over integer weights
//    that both sides compute bit for bit, and the draw is the unfiltered kernel's Philox draw),
//    confidence 1e-9 relative (float64 sums in another order, as in case sample_rows), in-place
//    EOS/EOT writes bit-exact. Many rows share one row of logits (with different noise) so that
//    tokens near the cutoffs get drawn: a cutoff one token off would show up as a token mismatch.
//  - select_threshold (CPU twin select_commits): canvas, committed list and count exact (float64
//  compares, ties included).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "check.h"
#include "decode/masked.h"
#include "decode/sampling.h"
#include "decode/select.h"
#include "kernels.h"
#include "sample_compare.h"

using namespace difflm_gpu;

namespace {

std::string fstr(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

// `rows` copies of one row: every row draws with other noise, so the draws spread over the kept
// set and reach its edge.
std::vector<float> repeat_row(const std::vector<float>& row, int64_t rows) {
  std::vector<float> out;
  out.reserve(row.size() * rows);
  for (int64_t r = 0; r < rows; ++r) out.insert(out.end(), row.begin(), row.end());
  return out;
}

}  // namespace

GPU_CASE(sample_rows_top_k_top_p) {
  std::mt19937 rng(301);
  struct F {
    int64_t k;
    double p;
  };
  for (int64_t vocab : {320, 50257, 126464}) {
    const int32_t eos = static_cast<int32_t>(vocab / 3), eot = static_cast<int32_t>(vocab - 2);
    // Three kinds of row, each repeated so that many draws test the same cutoffs:
    //  flat: uniform in [-3, 3] (a large nucleus); peaked: a few tokens far above the rest (a
    //  nucleus of a handful, as with a confident LM); ties: values on a grid of 0.25 with the
    //  maximum tied at both ends of the row and EOS among the top (cutoffs fall inside tie groups).
    const auto flat = random_floats(vocab, rng, 3.f);
    auto peaked = random_floats(vocab, rng, 2.f);
    for (int j = 0; j < 12; ++j) peaked[(j * 7919 + 11) % vocab] = 6.f + 0.5f * j;
    auto ties = random_floats(vocab, rng, 3.f);
    for (auto& x : ties) x = std::round(x * 4.f) / 4.f;
    ties[0] = ties[vocab - 1] = 4.f;
    ties[eos] = 3.75f;
    for (int64_t v = 3; v < vocab; v += 5) ties[v] = -INFINITY;
    const int64_t reps = vocab == 320 ? 64 : 8;  // the CPU reference costs ~15 ms a row at 126464
    const std::vector<float>&peaked_c = peaked, &ties_c = ties;
    std::vector<float> logits;
    for (const std::vector<float>* row : {&flat, &peaked_c, &ties_c}) {
      const auto block = repeat_row(*row, reps);
      logits.insert(logits.end(), block.begin(), block.end());
    }
    const int64_t rows = 3 * reps;
    const F filters[] = {{50, 1.0},        {0, 0.9},   {40, 0.8},
                         {1, 1.0},         {0, 1e-9},  {vocab - 1, 0.95},
                         {vocab + 5, 0.5}, {3, 0.999}, {vocab / 2, 0.3}};
    for (double T : {0.7, 1.0})
      for (const F& f : filters)
        for (int flags = 0; flags < 2; ++flags) {
          difflm::cuda::SampleParams p;
          p.temperature = T, p.seed = 0xfeedbeef12345ull + flags, p.step = 11 + flags;
          p.eos_id = eos, p.eot_id = eot;
          p.logits_eos_inf = flags & 1, p.confidence_eos_eot_inf = true;
          p.top_k = f.k, p.top_p = f.p;
          check_sample_rows(logits, rows, vocab, p,
                            "sample_rows filtered V " + std::to_string(vocab) + " T " + fstr(T) +
                                " k " + std::to_string(f.k) + " p " + fstr(f.p) + " eosinf " +
                                std::to_string(flags));
        }
    // No confidence wanted; and T = 0, where the filter must change nothing.
    difflm::cuda::SampleParams p;
    p.temperature = 0.7, p.want_confidence = false, p.eos_id = eos, p.top_k = 20, p.top_p = 0.7;
    check_sample_rows(logits, rows, vocab, p,
                      "sample_rows filtered V " + std::to_string(vocab) + " no confidence");
    p.temperature = 0, p.want_confidence = true, p.confidence_eos_eot_inf = true, p.eot_id = eot;
    check_sample_rows(logits, rows, vocab, p,
                      "sample_rows filtered V " + std::to_string(vocab) + " T 0");
    // A tiny temperature: nearly every top-p weight rounds to 0, so the nucleus is the maximum's
    // tie group (a cutoff one token off shows here first).
    p.temperature = 1e-3, p.top_k = 0, p.top_p = 0.9;
    check_sample_rows(logits, rows, vocab, p,
                      "sample_rows filtered V " + std::to_string(vocab) + " T 0.001 p 0.9");
  }
  // A row with every logit -inf but one, and one with all -inf (token 0, confidence 0).
  {
    const int64_t vocab = 1000, rows = 2;
    std::vector<float> logits(rows * vocab, -INFINITY);
    logits[123] = 1.f;
    difflm::cuda::SampleParams p;
    p.temperature = 1.0, p.top_k = 5, p.top_p = 0.5;
    check_sample_rows(logits, rows, vocab, p, "sample_rows filtered almost all -inf");
  }
  // Timing at LLaDA-8B: 126464-wide rows, with top-k 50 + top-p 0.9 and top-p 0.9 alone.
  const int64_t V = 126464;
  const auto one_row = random_floats(V, rng, 3.f);
  for (int64_t rows : {256, 2048}) {
    DeviceBuffer dl(rows * V * 4), dpos(rows * 8), dtok(rows * 4), dconf(rows * 8);
    for (int64_t r = 0; r < rows; ++r)
      CK(cudaMemcpy(dl.as<float>() + r * V, one_row.data(), V * 4, cudaMemcpyHostToDevice));
    std::vector<int64_t> pos(rows);
    for (int64_t r = 0; r < rows; ++r) pos[r] = r;
    dpos.upload(pos.data(), rows * 8);
    for (int64_t k : {50, 0}) {
      difflm::cuda::SampleParams p;
      p.temperature = 0.7, p.eos_id = 126081, p.eot_id = 126348, p.confidence_eos_eot_inf = true;
      p.top_k = k, p.top_p = 0.9;
      const double ms = time_ms([&] {
        difflm::cuda::sample_rows(dl.as<float>(), rows, V, dpos.as<int64_t>(), p,
                                  dtok.as<int32_t>(), dconf.as<double>(), nullptr);
      });
      report(k ? "sample_rows T=0.7 k50 p0.9" : "sample_rows T=0.7 p0.9",
             std::to_string(rows) + "x" + std::to_string(V), ms, 0, 4.0 * rows * V);
    }
  }
}

GPU_CASE(select_threshold) {
  std::mt19937 rng(302);
  for (int64_t n : {0, 1, 37, 600, 2048})
    for (int elig_pct : {0, 60, 100}) {
      // Confidences from ten levels, so ties (also with the threshold) are common.
      std::vector<double> conf(n);
      std::vector<int32_t> tok(n), canvas0(n, 126336);
      std::vector<uint8_t> elig(n);
      std::uniform_int_distribution<int> level(0, 9), tokd(0, 126463), coin(0, 99);
      for (int64_t i = 0; i < n; ++i) {
        conf[i] = level(rng) / 9.0;
        tok[i] = tokd(rng);
        elig[i] = coin(rng) < elig_pct;
      }
      for (double thr : {-1.0, 0.0, 5 / 9.0, 0.9, 1.0, 2.0}) {
        const auto order = difflm::select_commits(conf.data(), elig.data(), n,
                                                  difflm::CommitRule::at_threshold(thr));
        auto want_canvas = canvas0;
        std::vector<int32_t> want_committed;
        for (int64_t i : order) {
          want_canvas[i] = tok[i];
          want_committed.push_back(static_cast<int32_t>(i));
        }
        const int64_t cap = std::max<int64_t>(n, 1) + 1;
        DeviceBuffer dconf(std::max<int64_t>(n, 1) * 8), dtok(std::max<int64_t>(n, 1) * 4),
            delig(std::max<int64_t>(n, 1)), dcanvas(std::max<int64_t>(n, 1) * 4), dcom(cap * 4),
            dcount(4);
        if (n > 0) {
          dconf.upload(conf.data(), n * 8);
          dtok.upload(tok.data(), n * 4);
          delig.upload(elig.data(), n);
          dcanvas.upload(canvas0.data(), n * 4);
        }
        CK(cudaMemset(dcom.get(), 0x5a, dcom.bytes()));
        dcount.poison();
        difflm::cuda::select_threshold(dconf.as<double>(), dtok.as<int32_t>(), delig.as<uint8_t>(),
                                       n, thr, dcanvas.as<int32_t>(), dcom.as<int32_t>(),
                                       dcount.as<int32_t>(), nullptr);
        const std::string what = "select_threshold n " + std::to_string(n) + " eligible " +
                                 std::to_string(elig_pct) + "% thr " + fstr(thr);
        const int32_t count = download_vec<int32_t>(dcount, 1)[0];
        validate_exact(what + " count", {count}, {static_cast<int32_t>(want_committed.size())});
        if (n > 0) validate_exact(what + " canvas", download_vec<int32_t>(dcanvas, n), want_canvas);
        auto got_committed = download_vec<int32_t>(dcom, cap);
        // Entries past the count are left alone (still the 0x5a5a5a5a fill).
        bool untouched = true;
        for (size_t j = want_committed.size(); j < got_committed.size(); ++j)
          untouched &= got_committed[j] == 0x5a5a5a5a;
        got_committed.resize(std::min(got_committed.size(), want_committed.size()));
        validate_exact(what + " committed", got_committed, want_committed);
        expect(what + " tail untouched", untouched);
      }
    }
  const int64_t n = 2048;
  std::vector<double> conf(n);
  std::uniform_real_distribution<double> u01(0, 1);
  for (auto& c : conf) c = u01(rng);
  std::vector<uint8_t> elig(n, 1);
  DeviceBuffer dconf(n * 8), dtok(n * 4), delig(n), dcanvas(n * 4), dcom(n * 4), dcount(4);
  dconf.upload(conf.data(), n * 8);
  delig.upload(elig.data(), n);
  CK(cudaMemset(dtok.get(), 0, dtok.bytes()));
  const double ms = time_ms([&] {
    difflm::cuda::select_threshold(dconf.as<double>(), dtok.as<int32_t>(), delig.as<uint8_t>(), n,
                                   0.9, dcanvas.as<int32_t>(), dcom.as<int32_t>(),
                                   dcount.as<int32_t>(), nullptr);
  });
  report("select_threshold", "n 2048 thr 0.9", ms, 0, 13.0 * n);
}
