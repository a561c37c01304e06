// The engine's public face: load a model from safetensors files and run it. No Node here; the
// addon and the C++ test program both drive this.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "decode/ar.h"
#include "decode/masked.h"
#include "decode/score.h"
#include "model/llada.h"
#include "safetensors.h"

namespace difflm {

struct ModelLoadSpec {
  std::string arch;  // "llada", "dream" (masked diffusion) or "llama" (causal, AR)
  std::vector<std::string> files;
  LladaSpec llada;
  int threads = 1;
  std::string device = "cpu";  // "cpu" or "cuda"
};

class Model {
 public:
  // Maps and validates the weights; throws EngineError (ModelLoad / InvalidArgument).
  static std::shared_ptr<Model> load(const ModelLoadSpec& spec);

  const LladaSpec& spec() const { return net_->spec(); }
  size_t weight_bytes() const { return weights_->mapped_bytes(); }
  Backend& backend() { return *backend_; }

  // Full logits [ids.size()][vocab] of one forward. Calls on one model are serialised.
  std::vector<float> logits(const std::vector<int32_t>& ids, const CancelFn& cancelled);
  MaskedResult generate(const MaskedRequest& req,
                        const std::function<void(const StepEvent&)>& on_step,
                        const CancelFn& cancelled);
  // Negative log-likelihood of the text (exact for causal models, LLaDA's ELBO bound for
  // masked-diffusion ones).
  ScoreResult score(const ScoreRequest& req, const CancelFn& cancelled);
  // Left-to-right decoding with a KV cache (causal models).
  MaskedResult generate_ar(const ArRequest& req,
                           const std::function<void(const StepEvent&)>& on_step,
                           const CancelFn& cancelled);

 private:
  Model() = default;
  // Runs fn; if it fails and the backend says it can no longer run, remembers why, so this and
  // every later call report that the model must be loaded again.
  template <class F>
  auto guarded(F&& fn) -> decltype(fn());
  void throw_if_broken() const;
  std::vector<float> logits_locked(const std::vector<int32_t>& ids, const CancelFn& cancelled);
  std::string broken_;
  // Destroyed in reverse order: the network (and its backend buffers) before the backend.
  std::unique_ptr<WeightStore> weights_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<LladaModel> net_;
  std::mutex mutex_;
};

}  // namespace difflm
