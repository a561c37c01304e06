// Async work on libuv's pool: every engine call runs off the JS thread and settles a promise.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "convert.h"
#include "engine.h"

namespace difflm_addon {

// Reads the cancel flag lib/ writes into element 0 of an Int32Array, from the worker thread.
class CancelFlag {
 public:
  CancelFlag(Napi::Env env, Napi::Value value);
  bool cancelled() const;

 private:
  Napi::Reference<Napi::Int32Array> ref_;  // keeps the array alive while work runs
  const int32_t* flag_ = nullptr;
};

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, difflm::ModelLoadSpec spec);
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  difflm::ModelLoadSpec spec_;
  std::shared_ptr<difflm::Model> model_;
  CaughtError error_;
};

class LogitsWorker : public Napi::AsyncWorker {
 public:
  LogitsWorker(Napi::Env env, std::shared_ptr<difflm::Model> model, std::vector<int32_t> ids,
               Napi::Value cancel);
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<difflm::Model> model_;
  std::vector<int32_t> ids_;
  CancelFlag cancel_;
  std::vector<float> logits_;
  CaughtError error_;
};

class ScoreWorker : public Napi::AsyncWorker {
 public:
  ScoreWorker(Napi::Env env, std::shared_ptr<difflm::Model> model, difflm::ScoreRequest req,
              Napi::Value cancel);
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<difflm::Model> model_;
  difflm::ScoreRequest req_;
  CancelFlag cancel_;
  difflm::ScoreResult result_;
  CaughtError error_;
};

// A generation (masked diffusion or left to right) run on the worker thread.
using GenerateJob = std::function<difflm::MaskedResult(
    difflm::Model&, const std::function<void(const difflm::StepEvent&)>&, const difflm::CancelFn&)>;

// Step events go through a queue that delivers every one, in order, before the promise settles.
class GenerateWorker : public Napi::AsyncProgressQueueWorker<difflm::StepEvent> {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<difflm::Model> model, GenerateJob job,
                 Napi::Value cancel, Napi::Function on_step);
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute(const ExecutionProgress& progress) override;
  void OnProgress(const difflm::StepEvent* events, size_t count) override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<difflm::Model> model_;
  GenerateJob job_;
  CancelFlag cancel_;
  Napi::FunctionReference on_step_;
  difflm::MaskedResult result_;
  CaughtError error_;
};

}  // namespace difflm_addon
