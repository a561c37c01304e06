#include "engine.h"

#include "cpu/cpu_backend.h"
#include "errors.h"

namespace difflm {

std::shared_ptr<Model> Model::load(const ModelLoadSpec& spec) {
  if (spec.arch != "llada" && spec.arch != "llama" && spec.arch != "dream")
    throw EngineError(ErrorCode::ModelLoad, "unknown architecture \"" + spec.arch + "\"");
  LladaSpec net_spec = spec.llada;
  // Dream: a bidirectional Qwen2 (Hugging Face names, q/k/v biases) with shifted logits.
  const bool dream = spec.arch == "dream";
  net_spec.layout = spec.arch == "llada" ? Layout::Llada : Layout::Llama;
  net_spec.causal = spec.arch == "llama";
  net_spec.qkv_bias = dream;
  net_spec.shift_logits = dream;
  if (spec.threads < 1 || spec.threads > 1024)
    throw EngineError(ErrorCode::InvalidArgument, "threads must be between 1 and 1024");
  net_spec.validate();
  std::shared_ptr<Model> m(new Model());
  m->weights_ = std::make_unique<WeightStore>(spec.files);
  m->backend_ = make_backend(spec.device, spec.threads);
  // A GPU must hold every weight: refuse before allocating anything when it cannot.
  const size_t need = LladaModel::weight_bytes(net_spec, *m->weights_);
  const size_t free = m->backend_->free_bytes();
  if (need > free)
    throw EngineError(ErrorCode::OutOfMemory, "the model needs " + std::to_string(need) +
                                                  " bytes of " + m->backend_->name() +
                                                  " memory for its weights but only " +
                                                  std::to_string(free) + " bytes are free");
  m->net_ = std::make_unique<LladaModel>(net_spec, *m->weights_, *m->backend_);
  return m;
}

void Model::throw_if_broken() const {
  if (!broken_.empty())
    throw EngineError(ErrorCode::Internal,
                      "the model is no longer usable (" + broken_ + "); load it again");
}

template <class F>
auto Model::guarded(F&& fn) -> decltype(fn()) {
  throw_if_broken();
  struct Trim {  // however the request ends
    Backend& be;
    ~Trim() { be.trim(); }
  } trim{*backend_};
  try {
    return fn();
  } catch (const EngineError& e) {
    if (e.code() != ErrorCode::Internal) throw;
    const std::string why = backend_->broken();
    if (why.empty()) throw;
    broken_ = backend_->name() + " failed: " + why;
    throw EngineError(ErrorCode::Internal,
                      std::string(e.what()) + "; the model is no longer usable, load it again");
  }
}

std::vector<float> Model::logits(const std::vector<int32_t>& ids, const CancelFn& cancelled) {
  std::lock_guard<std::mutex> lock(mutex_);
  return guarded([&] { return logits_locked(ids, cancelled); });
}

std::vector<float> Model::logits_locked(const std::vector<int32_t>& ids,
                                        const CancelFn& cancelled) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n == 0) throw EngineError(ErrorCode::InvalidArgument, "logits: inputIds is empty");
  const size_t bytes = static_cast<size_t>(n * spec().vocab) * sizeof(float);
  Buffer dev(*backend_, bytes);
  net_->forward(ids.data(), 1, n, 0, n, dev.as(), [&cancelled] {
    if (cancelled && cancelled())
      throw EngineError(ErrorCode::Aborted, "aborted: logits were cancelled");
  });
  std::vector<float> out;
  try {
    out.resize(static_cast<size_t>(n * spec().vocab));
  } catch (const std::bad_alloc&) {
    throw EngineError(ErrorCode::OutOfMemory, "out of memory allocating logits");
  }
  backend_->to_host(out.data(), dev.as(), bytes);
  return out;
}

MaskedResult Model::generate(const MaskedRequest& req,
                             const std::function<void(const StepEvent&)>& on_step,
                             const CancelFn& cancelled) {
  std::lock_guard<std::mutex> lock(mutex_);
  return guarded([&] { return generate_masked(*net_, *backend_, req, on_step, cancelled); });
}

ScoreResult Model::score(const ScoreRequest& req, const CancelFn& cancelled) {
  std::lock_guard<std::mutex> lock(mutex_);
  return guarded([&] { return difflm::score(*net_, *backend_, req, cancelled); });
}

MaskedResult Model::generate_ar(const ArRequest& req,
                                const std::function<void(const StepEvent&)>& on_step,
                                const CancelFn& cancelled) {
  std::lock_guard<std::mutex> lock(mutex_);
  return guarded([&] { return difflm::generate_ar(*net_, *backend_, req, on_step, cancelled); });
}

}  // namespace difflm
