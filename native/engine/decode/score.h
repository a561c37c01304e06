// Likelihood scoring, computed next to the logits (they never leave native code):
// - causal models: the exact negative log-likelihood of each token given the ones before it;
// - masked-diffusion models: LLaDA's Monte-Carlo ELBO (get_log_likelihood.py, notes §2.7), an
//   upper bound on the negative log-likelihood: per sample, mask a stratified number of the
//   target tokens, and sum the cross-entropy on the masked ones divided by the masked fraction.
#pragma once

#include <cstdint>
#include <vector>

#include "../backend.h"
#include "../model/llada.h"
#include "masked.h"

namespace difflm {

struct ScoreRequest {
  std::vector<int32_t> ids;  // conditioning tokens, then the tokens to score
  int64_t first = 1;         // index of the first scored token (>= 1 for causal models)
  int64_t samples = 128;     // Monte-Carlo samples (masked models)
  int64_t batch = 8;         // samples per forward (masked models)
  uint64_t seed = 0;
  int32_t mask_id = -1;  // masked models

  void validate(const LladaSpec& spec) const;
};

struct ScoreResult {
  double nll = 0;      // nats, summed over the scored tokens (an upper bound for masked models)
  int64_t tokens = 0;  // tokens scored
  double ms = 0;
};

ScoreResult score(const LladaModel& model, Backend& be, const ScoreRequest& req,
                  const CancelFn& cancelled);

}  // namespace difflm
