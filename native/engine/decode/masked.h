// The masked-diffusion unmasking loop of LLaDA's generate() (notes §2.5), in native code:
// semi-autoregressive blocks, per-step commit counts, Gumbel-max candidates, confidence,
// remasking policy, classifier-free guidance and the EOS/EOT switches. Logits stay here.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "../backend.h"
#include "../model/llada.h"

namespace difflm {

enum class Remasking { LowConfidence = 0, Random = 1 };

struct MaskedRequest {
  std::vector<int32_t> prompt;
  int64_t gen_length = 0, steps = 0, block_length = 0;
  double temperature = 0;
  Remasking remasking = Remasking::LowConfidence;
  double cfg_scale = 0;
  uint64_t seed = 0;
  int32_t mask_id = 0;
  int32_t eos_id = -1;  // -1: none
  int32_t eot_id = -1;
  bool logits_eos_inf = false;
  bool confidence_eos_eot_inf = false;

  // Throws EngineError(InvalidArgument) naming the option when the request is inconsistent.
  void validate(const LladaSpec& spec) const;
};

struct StepEvent {
  int64_t step = 0, block = 0;
  std::vector<std::pair<int32_t, int32_t>> committed;  // (canvas position, token)
};

struct MaskedResult {
  std::vector<int32_t> canvas;
  int64_t steps = 0;
  double forward_ms = 0, sample_ms = 0, total_ms = 0;
};

// Polled between steps and between layers; returning true ends the run with
// EngineError(Aborted). An empty function never cancels.
using CancelFn = std::function<bool()>;

// Runs the loop; `on_step` is called after every step.
MaskedResult generate_masked(const LladaModel& model, Backend& be, const MaskedRequest& req,
                             const std::function<void(const StepEvent&)>& on_step,
                             const CancelFn& cancelled);

// Candidate token and confidence for one row of logits (exposed for tests): applies
// logitsEosInf, draws x0 (argmax at temperature 0, else Gumbel-max with noise keyed by
// (seed, step, pos)), and returns the softmax probability of x0 (float64) as confidence, with
// LLaDA's confidenceEosEotInf semantics.
struct Candidate {
  int32_t token;
  double confidence;
};
// Throws EngineError(Internal) naming the position and token when a logit is NaN.
void throw_if_nan_logits(const float* logits, int64_t vocab, int64_t pos);

Candidate sample_row(float* logits, int64_t vocab, const MaskedRequest& req, int64_t step,
                     int64_t pos);

}  // namespace difflm
