// The JS class wrapping a loaded engine Model: logits(), generate(), memory(), dispose().
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "engine.h"
#include "workers.h"

namespace difflm_addon {

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function define(Napi::Env env);
  // Wraps `model` in a new JS object (constructor stored in the addon's instance data).
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<difflm::Model> model);

  explicit AddonModel(const Napi::CallbackInfo& info);

 private:
  Napi::Value logits(const Napi::CallbackInfo& info);
  Napi::Value generate(const Napi::CallbackInfo& info);
  Napi::Value generate_ar(const Napi::CallbackInfo& info);
  Napi::Value score(const Napi::CallbackInfo& info);
  Napi::Value memory(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  // Checks the call, builds the job from the request object, and queues it on a worker.
  Napi::Value start_generation(const Napi::CallbackInfo& info,
                               const std::function<GenerateJob(const Napi::Object&)>& make);
  // The model, or a rejected promise's error when disposed.
  std::shared_ptr<difflm::Model> live(Napi::Env env) const;

  std::shared_ptr<difflm::Model> model_;
};

}  // namespace difflm_addon
