// Left-to-right decoding of a causal model with a KV cache (the AR baseline): prefill the
// prompt, then one token per step, drawn greedily (temperature 0) or by Gumbel-max over the
// top-k / top-p filtered logits (the same draw and noise as the masked loop's).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "../backend.h"
#include "../model/llada.h"
#include "masked.h"
#include "sampling.h"

namespace difflm {

struct ArRequest {
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 0;
  double temperature = 0;
  TopKTopP filter;
  uint64_t seed = 0;
  int32_t eos_id = -1;      // -1: none
  bool stop_at_eos = true;  // end after drawing eos_id

  // Throws EngineError(InvalidArgument) naming the option when the request is inconsistent.
  void validate(const LladaSpec& spec) const;
};

// Runs the loop; on_step gets one event per generated token (committed = {(position, token)}).
// The result's canvas is the prompt followed by the generated tokens, steps the number of
// tokens generated; forward_ms covers the prompt's prefill and every decoding forward.
MaskedResult generate_ar(const LladaModel& model, Backend& be, const ArRequest& req,
                         const std::function<void(const StepEvent&)>& on_step,
                         const CancelFn& cancelled);

}  // namespace difflm
