#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../errors.h"
#include "confidence.h"
#include "masked.h"

namespace difflm {

namespace {

constexpr float kNegInfF = -std::numeric_limits<float>::infinity();

[[noreturn]] void bad_filter(const std::string& what) {
  throw EngineError(ErrorCode::InvalidArgument, what);
}

}  // namespace

void apply_top_k(float* logits, int64_t vocab, int64_t k) {
  if (k < 0) bad_filter("topK must be an integer >= 0");
  if (k == 0 || k >= vocab) return;
  // Keep c >= the k-th largest value (ties with it kept).
  std::vector<float> vals(logits, logits + vocab);
  std::nth_element(vals.begin(), vals.begin() + (k - 1), vals.end(), std::greater<float>());
  const float kth = vals[k - 1];
  for (int64_t v = 0; v < vocab; ++v)
    if (logits[v] < kth) logits[v] = kNegInfF;
}

namespace {

// Top-p with the integer weights of sampling.h at `temperature` (> 0): keeps the tokens whose
// value is at least the first value, in descending order, at which the cumulative weight
// reaches target(W) (W: the total weight), i.e. the tokens whose tie group's mass strictly
// before it is below target.
void check_top_p_vocab(int64_t vocab) {
  if (vocab >= kTopPMaxVocab)
    bad_filter("topP needs a vocabulary of fewer than " + std::to_string(kTopPMaxVocab) +
               " tokens");
}

void top_p_cut(float* logits, int64_t vocab, double temperature,
               uint64_t (*target_of)(double p, uint64_t total), double p) {
  float m = kNegInfF;
  for (int64_t v = 0; v < vocab; ++v) m = std::max(m, logits[v]);
  if (m == kNegInfF) return;
  // Tokens of positive weight, by logit descending; the cutoff is the first whose cumulative
  // weight reaches the target (a zero-weight token can never be the first to reach it).
  std::vector<std::pair<float, uint64_t>> cand;
  uint64_t total = 0;
  for (int64_t v = 0; v < vocab; ++v) {
    const double z = (static_cast<double>(logits[v]) - static_cast<double>(m)) / temperature;
    const uint64_t w = top_p_weight(z);
    if (w == 0) continue;
    cand.emplace_back(logits[v], w);
    total += w;
  }
  if (total == 0) return;
  const uint64_t target = target_of(p, total);
  // Only the head of the order is needed: take the n largest (nth_element), and sort and scan
  // them if their weight reaches the target, else grow n. The cumulative weights within the
  // head are those of the full descending order (tied values have equal weights), so the first
  // to reach the target is the same token value as with a full sort.
  const auto desc = [](const std::pair<float, uint64_t>& a, const std::pair<float, uint64_t>& b) {
    return a.first > b.first;
  };
  float cutoff = kNegInfF;
  for (size_t n = std::min<size_t>(256, cand.size());; n = std::min(cand.size(), n * 8)) {
    if (n < cand.size()) std::nth_element(cand.begin(), cand.begin() + n, cand.end(), desc);
    uint64_t head = 0;
    for (size_t j = 0; j < n; ++j) head += cand[j].second;
    if (head < target && n < cand.size()) continue;
    std::sort(cand.begin(), cand.begin() + n, desc);
    uint64_t cum = 0;
    for (size_t j = 0; j < n; ++j) {
      cum += cand[j].second;
      if (cum >= target) {
        cutoff = cand[j].first;
        break;
      }
    }
    break;
  }
  for (int64_t v = 0; v < vocab; ++v)
    if (logits[v] < cutoff) logits[v] = kNegInfF;
}

void check_top_p(double p) {
  if (!(p > 0.0 && p <= 1.0)) bad_filter("topP must be a number in (0, 1]");
}

}  // namespace

void apply_top_k_top_p(float* logits, int64_t vocab, double temperature, const TopKTopP& f) {
  if (f.top_k < 0) bad_filter("topK must be an integer >= 0");
  check_top_p(f.top_p);
  if (vocab <= 0) return;
  apply_top_k(logits, vocab, f.top_k);
  if (!(f.top_p < 1.0)) return;
  check_top_p_vocab(vocab);
  if (!(temperature > 0)) {  // the T -> 0 limit: all the mass is on the maximum's tie group
    float m = kNegInfF;
    for (int64_t v = 0; v < vocab; ++v) m = std::max(m, logits[v]);
    for (int64_t v = 0; v < vocab; ++v)
      if (logits[v] < m) logits[v] = kNegInfF;
    return;
  }
  top_p_cut(logits, vocab, temperature, top_p_target, f.top_p);
}

void apply_dream_top_p(float* logits, int64_t vocab, double p) {
  check_top_p(p);
  if (vocab <= 0 || !(p < 1.0)) return;
  check_top_p_vocab(vocab);
  top_p_cut(logits, vocab, 1.0, dream_top_p_target, p);
}

Candidate sample_row_filtered(float* logits, int64_t vocab, const MaskedRequest& req,
                              const TopKTopP& f, int64_t step, int64_t pos) {
  if (req.temperature == 0 || !f.active(vocab)) return sample_row(logits, vocab, req, step, pos);
  throw_if_bad_logits(logits, vocab, pos);
  // The candidate: sample_row's Gumbel-max draw over the filtered copy (it skips -inf).
  std::vector<float> c(logits, logits + vocab);
  if (req.logits_eos_inf && req.eos_id >= 0) c[req.eos_id] = kNegInfF;
  apply_top_k_top_p(c.data(), vocab, req.temperature, f);
  MaskedRequest draw;  // only the fields the draw reads (not the prompt)
  draw.temperature = req.temperature;
  draw.seed = req.seed;
  draw.remasking = Remasking::Random;  // no confidence wanted from this call
  const int32_t x0 = sample_row(c.data(), vocab, draw, step, pos).token;

  // Confidence and in-place writes: sample_row's, on the unfiltered row (temperature > 0 here,
  // so confidenceEosEotInf drops EOT only).
  if (req.logits_eos_inf && req.eos_id >= 0) logits[req.eos_id] = kNegInfF;
  if (req.confidence_eos_eot_inf && req.eot_id >= 0) logits[req.eot_id] = kNegInfF;
  if (req.remasking != Remasking::LowConfidence) return {x0, 0.0};
  return {x0, softmax_confidence(logits, vocab, x0)};
}

}  // namespace difflm
