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
#include "dream.h"
#include "sampling.h"
#include "select.h"

namespace difflm {

enum class Remasking { LowConfidence = 0, Random = 1 };

// Fast-dLLM's block KV caches (notes masked_dlm.md §4.1-4.2). Each block starts with one forward
// over the whole canvas that fills the cache; its other steps then recompute only the current
// block and everything after it (Prefix: keys and values before the block are reused) or only the
// current block (Dual: those after it too, as computed at the block's first step). None runs the
// whole canvas at every step (exact LLaDA).
enum class CacheMode { None = 0, Prefix = 1, Dual = 2 };

// How a step picks the positions to commit: LLaDA's fixed per-step counts from `steps`, or
// parallel decoding (Fast-dLLM), where every block runs until it has no masks left and `steps`
// is not used.
enum class Parallel { Off = 0, Threshold = 1, Factor = 2 };

// Whose sampler turns a step's logits into commits: LLaDA's generate() (blocks, fixed counts,
// Gumbel-max, low_confidence / random remasking, CFG, Fast-dLLM caches and parallel commits) or
// Dream's _sample() (dream.h: one block, a timestep schedule, `alg`, top-p / top-k), or with a
// KV cache Fast-dLLM's block version of it (generation_utils_block.py): per block, a forward of
// the whole canvas that fills the cache and commits the block's first position, then cached
// steps on the block's own timestep schedule (steps / blocks timesteps), scored by entropy, or
// confidence_threshold's rule until the block has no mask; the prompt's masks stay.
enum class Sampler { Llada = 0, Dream = 1 };

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
  CacheMode cache = CacheMode::None;
  Parallel parallel = Parallel::Off;
  double threshold = 0.9;  // Parallel::Threshold, Dream's confidence_threshold: in [0, 1]
  double factor = 1.0;     // Parallel::Factor: > 0
  // Sampler::Dream: block_length == gen_length unless there is a cache, and none of cfg_scale,
  // remasking, the EOS switches or parallel commits (they are LLaDA's).
  Sampler sampler = Sampler::Llada;
  DreamAlg alg = DreamAlg::Entropy;
  double alg_temp = 0;  // >= 0; 0: the most confident positions (not confidence_threshold)
  double eps = 1e-3;    // the schedule's last timestep, in (0, 1)
  TopKTopP filter;      // Dream only

  // The commit rule of a step whose fixed schedule says k.
  CommitRule rule(int64_t k) const;
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
  int64_t forwards = 0;  // forward passes run (steps that committed nothing skip theirs)
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
// Throws EngineError(Internal) naming the position and token when a logit is NaN or +inf (no
// finite model gives one; a softmax over it is NaN). -inf is allowed: it masks a token.
void throw_if_bad_logits(const float* logits, int64_t vocab, int64_t pos);
// That error's message, shared with the CUDA backend (`value`: the offending logit).
std::string bad_logit_message(int64_t pos, int64_t token, float value);

Candidate sample_row(float* logits, int64_t vocab, const MaskedRequest& req, int64_t step,
                     int64_t pos);

// The candidate a backend stores for a masked position: sample_row()'s, with the Remask draw
// as confidence under random remasking, or dream_sample_row()'s for Dream's sampler.
Candidate sample_candidate(float* logits, int64_t vocab, const MaskedRequest& req, int64_t step,
                           int64_t pos);

}  // namespace difflm
