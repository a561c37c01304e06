// Dream's sampler (Dream-org/Dream-v0 generation_utils.py: `_sample` and `sample_tokens`; notes
// masked_dlm.md §3.4): one block over the whole generation, a timestep schedule that sets how
// many masked positions each step commits, and four ways (`alg`) to choose them. The masked
// loop (masked.h, MaskedRequest::sampler == Sampler::Dream) runs it; this file holds the parts
// that differ from LLaDA's, each as the reference computes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace difflm {

// How a step picks the positions it commits:
//  Origin: each masked position is revealed with probability 1 - s/t (all at the last step);
//  MaskgitPlus / TopkMargin / Entropy: the n most confident (n from dream_transfer_count), by
//    p(x0), p(1st) - p(2nd), or the negative entropy sum p log(p + 1e-10) of the position's
//    distribution; with alg_temp > 0, n drawn without replacement from softmax(conf / alg_temp);
//  ConfidenceThreshold (Fast-dLLM's parallel decoding for Dream): of the `budget` most confident
//    by p(x0), the best and every other one with p(x0) >= threshold (see DreamBudget).
enum class DreamAlg {
  Origin = 0,
  MaskgitPlus = 1,
  TopkMargin = 2,
  Entropy = 3,
  ConfidenceThreshold = 4
};

// t_i of torch.linspace(1, eps, steps + 1) in float32 (t_0 = 1, t_steps = eps), with torch's
// formula: start + step * i for the first half, end - step * (steps - i) for the second.
float dream_timestep(int64_t i, int64_t steps, float eps);

// Tokens a step commits with `masked` masks left (maskgit_plus, topk_margin, entropy):
// int(masked * (1 - t_{i+1} / t_i)) in float32, and every mask at the last step.
int64_t dream_transfer_count(int64_t masked, int64_t i, int64_t steps, float eps);

// Origin: the probability 1 - t_{i+1} / t_i (float32) that a masked position is revealed at
// step i; 1 at the last step.
double dream_reveal_probability(int64_t i, int64_t steps, float eps);

struct MaskedRequest;
struct Candidate;

// How many positions each step of Dream's sampler may commit, over one run:
//  - the timestep schedule (dream_transfer_count) from the masks left on the host's canvas
//    (every masked position counts, the prompt's too, as in the reference);
//  - origin: the masked positions whose reveal draw is below the reveal probability;
//  - confidence_threshold (Fast-dLLM's generation_utils.py): masks / steps a step (the masks
//    must be a multiple of steps) plus what the step before rejected; when the last step rejects
//    some, one more step follows with only those.
class DreamBudget {
 public:
  // `masks`: the masked positions of the starting canvas. Throws EngineError(InvalidArgument)
  // for confidence_threshold when they are not a multiple of req.steps.
  DreamBudget(const MaskedRequest& req, int64_t masks);
  int64_t steps() const { return steps_; }
  // The budget of `step`, given the canvas before it.
  int64_t at(int64_t step, const std::vector<int32_t>& canvas) const;
  // After a step that offered `budget` and committed `committed` positions.
  void after(int64_t step, int64_t budget, int64_t committed);

 private:
  const MaskedRequest& req_;
  int64_t steps_ = 0, per_step_ = 0, carry_ = 0;
};

// Candidate token and confidence of one masked position from its row of (shifted) logits,
// as Dream's sample_tokens: the logits divided by the temperature (when > 0), top-p then top-k
// filtering (sampling.h: apply_dream_top_p, apply_top_k), x0 = the argmax (temperature 0) or a
// Gumbel-max draw (noise keyed by seed, step and position), and the alg's confidence in
// float64 (the reference computes it in the logits' dtype). With alg_temp > 0 the confidence
// gets Gumbel noise (stream Select) so that the top n are a draw without replacement. Origin's
// confidence is minus its reveal draw (stream Transfer): the positions whose draw is below the
// reveal probability are exactly the most confident ones. `logits` is not modified. Throws
// EngineError(Internal) for NaN or +inf logits, and EngineError(InvalidArgument) when a
// logit / temperature overflows float32.
// alg_temp: the top n of conf / alg_temp + Gumbel noise are a draw of n positions without
// replacement from softmax(conf / alg_temp) over the masked positions. torch.multinomial, which
// the reference uses, differs once some of those probabilities underflow to 0: it then fills
// the remaining picks from zero-probability entries, unmasked positions included (whose tokens
// the reference then overwrites with the mask id). Here only masked positions are picked.
Candidate dream_sample_row(const float* logits, int64_t vocab, const MaskedRequest& req,
                           int64_t step, int64_t pos);

// The error when logits / temperature overflows float32 (a temperature far too small); shared
// with the CUDA kernel's report.
std::string temperature_overflow_message(double temperature, int64_t pos);

// Origin's reveal draw of canvas position `pos` at `step`, in (0, 1).
double dream_reveal_draw(uint64_t seed, int64_t step, int64_t pos);

}  // namespace difflm
