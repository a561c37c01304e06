#include "addon_model.h"

#include "convert.h"
#include "workers.h"

namespace difflm_addon {

namespace {

// The AddonModel constructor, kept per environment (worker threads each have their own).
struct InstanceData {
  Napi::FunctionReference model_ctor;
};

// Set by wrap() just before `new`, so JS cannot construct a model without an engine model.
thread_local std::shared_ptr<difflm::Model>* pending_model = nullptr;

Napi::Value rejected(Napi::Env env, const std::string& code, const std::string& message) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(make_error(env, code, message).Value());
  return d.Promise();
}

std::vector<int32_t> read_ids(Napi::Env env, Napi::Value v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, std::string("expected an Int32Array for \"") + what + "\"");
  auto a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

// The `seed` option: an integer in [0, 2^53).
uint64_t read_seed(const Napi::Object& o) {
  const double seed = get_number(o, "seed");
  if (!(seed >= 0 && seed < 9007199254740992.0) ||
      seed != static_cast<double>(static_cast<uint64_t>(seed)))
    throw Napi::TypeError::New(o.Env(), "expected an integer in [0, 2^53) for \"seed\"");
  return static_cast<uint64_t>(seed);
}

}  // namespace

Napi::Function AddonModel::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "NativeModel",
      {InstanceMethod("logits", &AddonModel::logits),
       InstanceMethod("generate", &AddonModel::generate),
       InstanceMethod("generateAr", &AddonModel::generate_ar),
       InstanceMethod("score", &AddonModel::score), InstanceMethod("memory", &AddonModel::memory),
       InstanceMethod("dispose", &AddonModel::dispose)});
  auto* data = new InstanceData{Napi::Persistent(ctor)};
  env.SetInstanceData<InstanceData>(data);
  return ctor;
}

Napi::Object AddonModel::wrap(Napi::Env env, std::shared_ptr<difflm::Model> model) {
  pending_model = &model;
  Napi::Object o = env.GetInstanceData<InstanceData>()->model_ctor.New({});
  pending_model = nullptr;
  return o;
}

AddonModel::AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {
  if (!pending_model)
    throw Napi::TypeError::New(info.Env(), "NativeModel is created by loadModel(), not new");
  model_ = std::move(*pending_model);
}

std::shared_ptr<difflm::Model> AddonModel::live(Napi::Env) const {
  return model_;
}

Napi::Value AddonModel::logits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  if (!model) return rejected(env, "DIFFLM_DISPOSED", "the model has been disposed");
  auto* w = new LogitsWorker(env, model, read_ids(env, info[0], "ids"), info[1]);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value AddonModel::start_generation(
    const Napi::CallbackInfo& info, const std::function<GenerateJob(const Napi::Object&)>& make) {
  Napi::Env env = info.Env();
  auto model = live(env);
  if (!model) return rejected(env, "DIFFLM_DISPOSED", "the model has been disposed");
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "expected a request object");
  if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "expected an onStep function");
  Napi::Object o = info[0].As<Napi::Object>();
  auto* w = new GenerateWorker(env, model, make(o), o.Get("cancel"), info[1].As<Napi::Function>());
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value AddonModel::generate(const Napi::CallbackInfo& info) {
  return start_generation(info, [&](const Napi::Object& o) -> GenerateJob {
    difflm::MaskedRequest r;
    r.prompt = read_ids(o.Env(), o.Get("prompt"), "prompt");
    r.gen_length = get_int(o, "genLength");
    r.steps = get_int(o, "steps");
    r.block_length = get_int(o, "blockLength");
    r.temperature = get_number(o, "temperature");
    const int64_t remasking = get_int(o, "remasking");
    if (remasking != 0 && remasking != 1)
      throw Napi::TypeError::New(o.Env(), "expected 0 or 1 for \"remasking\"");
    r.remasking = static_cast<difflm::Remasking>(remasking);
    r.cfg_scale = get_number(o, "cfgScale");
    r.seed = read_seed(o);
    r.mask_id = static_cast<int32_t>(get_int(o, "maskTokenId"));
    r.eos_id = static_cast<int32_t>(get_int(o, "eosTokenId"));
    r.eot_id = static_cast<int32_t>(get_int(o, "eotTokenId"));
    r.logits_eos_inf = get_bool(o, "logitsEosInf");
    r.confidence_eos_eot_inf = get_bool(o, "confidenceEosEotInf");
    const int64_t cache = get_int(o, "cache"), parallel = get_int(o, "parallel");
    if (cache < 0 || cache > 2)
      throw Napi::TypeError::New(o.Env(), "expected 0 to 2 for \"cache\"");
    if (parallel < 0 || parallel > 2)
      throw Napi::TypeError::New(o.Env(), "expected 0 to 2 for \"parallel\"");
    r.cache = static_cast<difflm::CacheMode>(cache);
    r.parallel = static_cast<difflm::Parallel>(parallel);
    r.threshold = get_number(o, "threshold");
    r.factor = get_number(o, "factor");
    const int64_t sampler = get_int(o, "sampler"), alg = get_int(o, "alg");
    if (sampler < 0 || sampler > 1)
      throw Napi::TypeError::New(o.Env(), "expected 0 or 1 for \"sampler\"");
    if (alg < 0 || alg > 4) throw Napi::TypeError::New(o.Env(), "expected 0 to 4 for \"alg\"");
    r.sampler = static_cast<difflm::Sampler>(sampler);
    r.alg = static_cast<difflm::DreamAlg>(alg);
    r.alg_temp = get_number(o, "algTemp");
    r.eps = get_number(o, "eps");
    r.filter.top_k = get_int(o, "topK");
    r.filter.top_p = get_number(o, "topP");
    return [r = std::move(r)](difflm::Model& m, const auto& on_step,
                              const difflm::CancelFn& cancelled) {
      return m.generate(r, on_step, cancelled);
    };
  });
}

Napi::Value AddonModel::generate_ar(const Napi::CallbackInfo& info) {
  return start_generation(info, [&](const Napi::Object& o) -> GenerateJob {
    difflm::ArRequest r;
    r.prompt = read_ids(o.Env(), o.Get("prompt"), "prompt");
    r.max_new_tokens = get_int(o, "genLength");
    r.temperature = get_number(o, "temperature");
    r.filter.top_k = get_int(o, "topK");
    r.filter.top_p = get_number(o, "topP");
    r.seed = read_seed(o);
    r.eos_id = static_cast<int32_t>(get_int(o, "eosTokenId"));
    r.stop_at_eos = get_bool(o, "stopAtEos");
    return [r = std::move(r)](difflm::Model& m, const auto& on_step,
                              const difflm::CancelFn& cancelled) {
      return m.generate_ar(r, on_step, cancelled);
    };
  });
}

Napi::Value AddonModel::score(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto model = live(env);
  if (!model) return rejected(env, "DIFFLM_DISPOSED", "the model has been disposed");
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "expected a request object");
  Napi::Object o = info[0].As<Napi::Object>();
  difflm::ScoreRequest r;
  r.ids = read_ids(env, o.Get("ids"), "ids");
  r.first = get_int(o, "first");
  r.samples = get_int(o, "samples");
  r.batch = get_int(o, "batch");
  r.seed = read_seed(o);
  r.mask_id = static_cast<int32_t>(get_int(o, "maskTokenId"));
  auto* w = new ScoreWorker(env, model, std::move(r), o.Get("cancel"));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value AddonModel::memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("weightBytes", Napi::Number::New(env, model_ ? double(model_->weight_bytes()) : 0.0));
  o.Set("workBytes", Napi::Number::New(env, 0.0));
  return o;
}

Napi::Value AddonModel::dispose(const Napi::CallbackInfo& info) {
  // Running work holds its own reference; the weights are unmapped when the last one ends.
  model_.reset();
  return info.Env().Undefined();
}

}  // namespace difflm_addon
