// sample_rows against its CPU twin; shared by the sampling cases.
#include "sample_compare.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "check.h"
#include "decode/masked.h"
#include "decode/sampling.h"

using namespace difflm_gpu;

namespace {

// Bitwise float equality (so -inf == -inf and NaN is caught), for the in-place logit writes.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

}  // namespace

namespace difflm_gpu {

void check_sample_rows(const std::vector<float>& logits, int64_t rows, int64_t vocab,
                       const difflm::cuda::SampleParams& p, const std::string& what,
                       const std::vector<uint8_t>& committed) {
  std::vector<int64_t> pos(rows);
  for (int64_t r = 0; r < rows; ++r) pos[r] = 1000 + 7 * r;  // canvas positions key the noise
  const auto skip = [&](int64_t r) { return !committed.empty() && committed[r]; };
  difflm::MaskedRequest req;
  req.temperature = p.temperature, req.seed = p.seed, req.eos_id = p.eos_id, req.eot_id = p.eot_id;
  req.logits_eos_inf = p.logits_eos_inf, req.confidence_eos_eot_inf = p.confidence_eos_eot_inf;
  req.remasking = p.want_confidence ? difflm::Remasking::LowConfidence : difflm::Remasking::Random;
  difflm::TopKTopP f;
  f.top_k = p.top_k, f.top_p = p.top_p;
  auto want_logits = logits;
  std::vector<double> want_conf(rows);
  DeviceBuffer dl(logits.size() * 4), dpos(rows * 8), dtok(rows * 4), dconf(rows * 8);
  dtok.poison();
  dconf.poison();
  // Skipped rows keep what the buffers held (the poison).
  auto want_tok = download_vec<int32_t>(dtok, rows);
  for (int64_t r = 0; r < rows; ++r) {
    if (skip(r)) continue;
    const auto c =
        difflm::sample_row_filtered(want_logits.data() + r * vocab, vocab, req, f, p.step, pos[r]);
    want_tok[r] = c.token, want_conf[r] = c.confidence;
  }
  dl.upload(logits.data(), logits.size() * 4);
  dpos.upload(pos.data(), rows * 8);
  difflm::cuda::SampleParams q = p;
  DeviceBuffer dcanvas(committed.empty() ? 4 : static_cast<size_t>(pos[rows - 1] + 1) * 4);
  if (!committed.empty()) {
    const int32_t mask = 126336;
    std::vector<int32_t> canvas(static_cast<size_t>(pos[rows - 1] + 1), mask);
    for (int64_t r = 0; r < rows; ++r)
      if (skip(r)) canvas[pos[r]] = 5;
    dcanvas.upload(canvas.data(), canvas.size() * 4);
    q.canvas = dcanvas.as<int32_t>(), q.mask_id = mask;
  }
  difflm::cuda::sample_rows(dl.as<float>(), rows, vocab, dpos.as<int64_t>(), q, dtok.as<int32_t>(),
                            dconf.as<double>(), nullptr);
  validate_exact(what + " tokens", download_vec<int32_t>(dtok, rows), want_tok);
  const auto conf = download_vec<double>(dconf, rows);
  double worst = 0;
  bool ok = true;
  for (int64_t r = 0; r < rows; ++r) {
    if (skip(r)) {  // still the poison's bits
      ok = ok && std::isnan(conf[r]);
      continue;
    }
    if (std::isnan(conf[r])) ok = false;
    const double err =
        want_conf[r] == 0 ? std::fabs(conf[r]) : std::fabs(conf[r] / want_conf[r] - 1);
    worst = std::max(worst, err);
  }
  expect(what + " confidence", ok && worst <= 1e-9, "worst rel err " + std::to_string(worst));
  expect(what + " logits after", same_bits(download_vec<float>(dl, logits.size()), want_logits));
}

}  // namespace difflm_gpu
