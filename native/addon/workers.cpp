#include "workers.h"

#include "addon_model.h"

namespace difflm_addon {

namespace {

void reject_with(Napi::Promise::Deferred& d, Napi::Env env, const CaughtError& caught,
                 const Napi::Error& fallback) {
  if (caught.set)
    d.Reject(make_error(env, caught.code, caught.message).Value());
  else
    d.Reject(fallback.Value());
}

}  // namespace

CancelFlag::CancelFlag(Napi::Env env, Napi::Value value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      value.As<Napi::Int32Array>().ElementLength() < 1)
    throw Napi::TypeError::New(env, "expected an Int32Array of length >= 1 for \"cancel\"");
  auto arr = value.As<Napi::Int32Array>();
  ref_ = Napi::Persistent(arr);
  flag_ = arr.Data();
}

bool CancelFlag::cancelled() const {
  return __atomic_load_n(flag_, __ATOMIC_RELAXED) != 0;
}

// ---- load

LoadWorker::LoadWorker(Napi::Env env, difflm::ModelLoadSpec spec)
    : Napi::AsyncWorker(env, "difflm.loadModel"),
      deferred_(Napi::Promise::Deferred::New(env)),
      spec_(std::move(spec)) {}

void LoadWorker::Execute() {
  capture_errors(error_, [&] { model_ = difflm::Model::load(spec_); });
  if (error_.set) SetError(error_.message);
}

void LoadWorker::OnOK() {
  deferred_.Resolve(AddonModel::wrap(Env(), std::move(model_)));
}

void LoadWorker::OnError(const Napi::Error& e) {
  reject_with(deferred_, Env(), error_, e);
}

// ---- logits

LogitsWorker::LogitsWorker(Napi::Env env, std::shared_ptr<difflm::Model> model,
                           std::vector<int32_t> ids, Napi::Value cancel)
    : Napi::AsyncWorker(env, "difflm.logits"),
      deferred_(Napi::Promise::Deferred::New(env)),
      model_(std::move(model)),
      ids_(std::move(ids)),
      cancel_(env, cancel) {}

void LogitsWorker::Execute() {
  capture_errors(error_,
                 [&] { logits_ = model_->logits(ids_, [this] { return cancel_.cancelled(); }); });
  if (error_.set) SetError(error_.message);
}

void LogitsWorker::OnOK() {
  Napi::Env env = Env();
  auto out = Napi::Float32Array::New(env, logits_.size());
  std::copy(logits_.begin(), logits_.end(), out.Data());
  logits_ = {};
  deferred_.Resolve(out);
}

void LogitsWorker::OnError(const Napi::Error& e) {
  reject_with(deferred_, Env(), error_, e);
}

// ---- score

ScoreWorker::ScoreWorker(Napi::Env env, std::shared_ptr<difflm::Model> model,
                         difflm::ScoreRequest req, Napi::Value cancel)
    : Napi::AsyncWorker(env, "difflm.score"),
      deferred_(Napi::Promise::Deferred::New(env)),
      model_(std::move(model)),
      req_(std::move(req)),
      cancel_(env, cancel) {}

void ScoreWorker::Execute() {
  capture_errors(error_,
                 [&] { result_ = model_->score(req_, [this] { return cancel_.cancelled(); }); });
  if (error_.set) SetError(error_.message);
}

void ScoreWorker::OnOK() {
  Napi::Env env = Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("nll", Napi::Number::New(env, result_.nll));
  r.Set("tokens", Napi::Number::New(env, static_cast<double>(result_.tokens)));
  r.Set("ms", Napi::Number::New(env, result_.ms));
  deferred_.Resolve(r);
}

void ScoreWorker::OnError(const Napi::Error& e) {
  reject_with(deferred_, Env(), error_, e);
}

// ---- generate

GenerateWorker::GenerateWorker(Napi::Env env, std::shared_ptr<difflm::Model> model, GenerateJob job,
                               Napi::Value cancel, Napi::Function on_step)
    : Napi::AsyncProgressQueueWorker<difflm::StepEvent>(env, "difflm.generate"),
      deferred_(Napi::Promise::Deferred::New(env)),
      model_(std::move(model)),
      job_(std::move(job)),
      cancel_(env, cancel),
      on_step_(Napi::Persistent(on_step)) {}

void GenerateWorker::Execute(const ExecutionProgress& progress) {
  capture_errors(error_, [&] {
    result_ = job_(
        *model_, [&](const difflm::StepEvent& ev) { progress.Send(&ev, 1); },
        [this] { return cancel_.cancelled(); });
  });
  if (error_.set) SetError(error_.message);
}

void GenerateWorker::OnProgress(const difflm::StepEvent* events, size_t count) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  for (size_t i = 0; i < count; ++i) {
    const difflm::StepEvent& ev = events[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("step", Napi::Number::New(env, static_cast<double>(ev.step)));
    o.Set("block", Napi::Number::New(env, static_cast<double>(ev.block)));
    auto committed = Napi::Int32Array::New(env, ev.committed.size() * 2);
    for (size_t j = 0; j < ev.committed.size(); ++j) {
      committed[2 * j] = ev.committed[j].first;
      committed[2 * j + 1] = ev.committed[j].second;
    }
    o.Set("committed", committed);
    // lib/ wraps the callback so it never throws; an exception here would be a lib/ bug and is
    // left pending for Node to report.
    on_step_.Call({o});
  }
}

void GenerateWorker::OnOK() {
  Napi::Env env = Env();
  Napi::Object r = Napi::Object::New(env);
  auto canvas = Napi::Int32Array::New(env, result_.canvas.size());
  std::copy(result_.canvas.begin(), result_.canvas.end(), canvas.Data());
  r.Set("canvas", canvas);
  r.Set("steps", Napi::Number::New(env, static_cast<double>(result_.steps)));
  r.Set("forwards", Napi::Number::New(env, static_cast<double>(result_.forwards)));
  r.Set("forwardMs", Napi::Number::New(env, result_.forward_ms));
  r.Set("sampleMs", Napi::Number::New(env, result_.sample_ms));
  r.Set("totalMs", Napi::Number::New(env, result_.total_ms));
  deferred_.Resolve(r);
}

void GenerateWorker::OnError(const Napi::Error& e) {
  reject_with(deferred_, Env(), error_, e);
}

}  // namespace difflm_addon
