#include "dream.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../errors.h"
#include "../rng.h"
#include "confidence.h"
#include "masked.h"
#include "sampling.h"

namespace difflm {

float dream_timestep(int64_t i, int64_t steps, float eps) {
  // torch.linspace(start, end, n) for float: step = (end - start) / (n - 1) in float32; points
  // before n / 2 count from the start, the others back from the end.
  const int64_t n = steps + 1;
  const float start = 1.0f, end = eps;
  const float step = (end - start) / static_cast<float>(steps);
  if (i < n / 2) {
    const float offset = step * static_cast<float>(i);
    return start + offset;
  }
  const float offset = step * static_cast<float>(steps - i);
  return end - offset;
}

namespace {

// 1 - s / t of step i in float32, as `_sample` computes it from two 0-d float32 tensors.
float reveal_fraction(int64_t i, int64_t steps, float eps) {
  const float t = dream_timestep(i, steps, eps), s = dream_timestep(i + 1, steps, eps);
  const float ratio = s / t;
  return 1.0f - ratio;
}

constexpr float kNegInfF = -std::numeric_limits<float>::infinity();
constexpr float kInfF = std::numeric_limits<float>::infinity();

}  // namespace

std::string temperature_overflow_message(double temperature, int64_t pos) {
  return "temperature " + std::to_string(temperature) +
         " is too small for these logits: logit / temperature overflows float32 at canvas "
         "position " +
         std::to_string(pos) + " (use temperature 0 for greedy decoding)";
}

int64_t dream_transfer_count(int64_t masked, int64_t i, int64_t steps, float eps) {
  if (i >= steps - 1) return masked;
  // int(num_mask_token * (1 - s / t)): a float32 product, truncated.
  const float n = static_cast<float>(masked) * reveal_fraction(i, steps, eps);
  return static_cast<int64_t>(n);
}

double dream_reveal_probability(int64_t i, int64_t steps, float eps) {
  return i >= steps - 1 ? 1.0 : static_cast<double>(reveal_fraction(i, steps, eps));
}

DreamBudget::DreamBudget(const MaskedRequest& req, int64_t masks) : req_(req), steps_(req.steps) {
  if (req.alg != DreamAlg::ConfidenceThreshold) return;
  if (masks % req.steps != 0)
    throw EngineError(ErrorCode::InvalidArgument,
                      "alg 'confidence_threshold' needs the number of masks (" +
                          std::to_string(masks) + ") to be a multiple of steps (" +
                          std::to_string(req.steps) + "), as Fast-dLLM's Dream code requires");
  per_step_ = masks / req.steps;
}

int64_t DreamBudget::at(int64_t step, const std::vector<int32_t>& canvas) const {
  const float eps = static_cast<float>(req_.eps);
  const int32_t mask = req_.mask_id;
  switch (req_.alg) {
    case DreamAlg::ConfidenceThreshold: return per_step_ + carry_;
    case DreamAlg::Origin: {
      const double p = dream_reveal_probability(step, steps_, eps);
      int64_t n = 0;
      for (size_t i = 0; i < canvas.size(); ++i)
        if (canvas[i] == mask) n += dream_reveal_draw(req_.seed, step, static_cast<int64_t>(i)) < p;
      return n;
    }
    default:
      return dream_transfer_count(std::count(canvas.begin(), canvas.end(), mask), step, steps_,
                                  eps);
  }
}

void DreamBudget::after(int64_t step, int64_t budget, int64_t committed) {
  if (req_.alg != DreamAlg::ConfidenceThreshold) return;
  carry_ = budget - committed;
  if (carry_ > 0 && step == steps_ - 1) {  // the last step rejected some: one more for them
    ++steps_;
    per_step_ = 0;
  }
}

double dream_reveal_draw(uint64_t seed, int64_t step, int64_t pos) {
  return uniform01(seed, RngStream::Transfer, static_cast<uint64_t>(step),
                   static_cast<uint64_t>(pos), 0);
}

Candidate dream_sample_row(const float* logits, int64_t vocab, const MaskedRequest& req,
                           int64_t step, int64_t pos) {
  throw_if_bad_logits(logits, vocab, pos);
  // The row sample_tokens sees: logits / temperature, then top-p, then top-k.
  thread_local std::vector<float> z;
  z.assign(logits, logits + vocab);
  if (req.temperature > 0) {
    const float t = static_cast<float>(req.temperature);
    for (float& v : z) v /= t;
    for (int64_t v = 0; v < vocab; ++v)
      if (!(z[v] < kInfF))
        throw EngineError(ErrorCode::InvalidArgument,
                          temperature_overflow_message(req.temperature, pos));
  }
  apply_dream_top_p(z.data(), vocab, req.filter.top_p);
  apply_top_k(z.data(), vocab, req.filter.top_k);

  int32_t x0 = 0;
  if (req.temperature == 0) {
    for (int64_t v = 1; v < vocab; ++v)
      if (z[v] > z[x0]) x0 = static_cast<int32_t>(v);
  } else {  // a draw from softmax(z): Gumbel-max at temperature 1 over z (filtered tokens: -inf)
    MaskedRequest draw;
    draw.temperature = 1.0;
    draw.seed = req.seed;
    draw.remasking = Remasking::Random;  // the token only
    x0 = sample_row(z.data(), vocab, draw, step, pos).token;
  }

  double confidence = 0;
  if (req.alg == DreamAlg::Origin) {
    return {x0, -dream_reveal_draw(req.seed, step, pos)};
  } else if (req.alg == DreamAlg::MaskgitPlus || req.alg == DreamAlg::ConfidenceThreshold) {
    confidence = softmax_confidence(z.data(), vocab, x0);
  } else {
    // The row's softmax p = exp(z - m) / sum, in float64 (the terms kept for the entropy).
    float m = kNegInfF;
    for (const float v : z) m = std::max(m, v);
    thread_local std::vector<double> e;
    e.resize(z.size());
    double sum = 0;
    for (size_t v = 0; v < z.size(); ++v) {
      e[v] = z[v] == kNegInfF ? 0.0 : std::exp(static_cast<double>(z[v]) - m);
      sum += e[v];
    }
    if (req.alg == DreamAlg::TopkMargin) {
      // p(1st) - p(2nd) of the sorted probabilities (equal maxima: 0).
      float second = kNegInfF;
      bool seen_max = false;
      for (const float v : z) {
        if (v == m && !seen_max)
          seen_max = true;
        else
          second = std::max(second, v);
      }
      const double p2 = second == kNegInfF ? 0.0 : std::exp(static_cast<double>(second) - m);
      confidence = (1.0 - p2) / sum;
    } else {  // Entropy: sum of p log(p + 1e-10), the negative entropy (higher: more certain)
      for (size_t v = 0; v < z.size(); ++v) {
        if (z[v] == kNegInfF) continue;
        const double p = e[v] / sum;
        confidence += p * std::log(p + 1e-10);
      }
    }
  }
  if (req.alg_temp > 0 && req.alg != DreamAlg::ConfidenceThreshold) {
    // Gumbel-top-k: the n largest of conf / alg_temp + Gumbel noise are a draw of n positions
    // without replacement from softmax(conf / alg_temp), as torch.multinomial's.
    const double u = uniform01(req.seed, RngStream::Select, static_cast<uint64_t>(step),
                               static_cast<uint64_t>(pos), 0);
    confidence = confidence / req.alg_temp - std::log(-std::log(u));
  }
  return {x0, confidence};
}

}  // namespace difflm
