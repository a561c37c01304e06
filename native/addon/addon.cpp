// Registers the addon's functions. Everything here is glue: options are read into engine
// structs, work goes to worker threads, results and errors come back as promises.
#include <napi.h>

#include "addon_bench.h"
#include "addon_model.h"
#include "convert.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cuda_entry.h"
#include "workers.h"

namespace difflm_addon {

namespace {

Napi::Value version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), "0.1.0");
}

Napi::Value cpu_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const difflm::CpuFeatures& f = difflm::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bf16", f.avx512bf16);
  o.Set("gemmPath", difflm::gemm_path_name(difflm::gemm_default_path()));
  o.Set("cores", difflm::available_cores());
  return o;
}

Napi::Value load_model(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "expected a model spec object");
  Napi::Object o = info[0].As<Napi::Object>();
  difflm::ModelLoadSpec spec;
  spec.arch = get_string(o, "arch");
  Napi::Value files = o.Get("files");
  if (!files.IsArray()) throw Napi::TypeError::New(env, "expected an array for \"files\"");
  auto arr = files.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value f = arr.Get(i);
    if (!f.IsString()) throw Napi::TypeError::New(env, "expected strings in \"files\"");
    spec.files.push_back(f.As<Napi::String>().Utf8Value());
  }
  difflm::LladaSpec& s = spec.llada;
  s.d_model = get_int(o, "dModel");
  s.n_layers = get_int(o, "nLayers");
  s.n_heads = get_int(o, "nHeads");
  s.n_kv_heads = get_int(o, "nKvHeads");
  s.mlp_hidden = get_int(o, "mlpHidden");
  s.vocab = get_int(o, "vocabSize");
  s.rope_theta = get_number(o, "ropeTheta");
  s.rms_eps = get_number(o, "rmsNormEps");
  s.max_seq_len = get_int(o, "maxSequenceLength");
  s.weight_tying = get_bool(o, "weightTying");
  spec.threads = static_cast<int>(get_int(o, "threads"));
  spec.device = get_string(o, "device");
  auto* w = new LoadWorker(env, std::move(spec));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// CUDA devices this binary can use, and why there are none when empty. devices(false) leaves
// out the free memory, whose query creates a CUDA context on every device.
Napi::Value devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  const bool with_free = info.Length() == 0 || !info[0].IsBoolean() || info[0].As<Napi::Boolean>();
  const auto list = difflm::cuda_devices(&why, with_free);
  Napi::Object o = Napi::Object::New(env);
  o.Set("cudaBuilt", difflm::cuda_built());
  o.Set("reason", why);
  Napi::Array arr = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", list[i].index);
    d.Set("name", list[i].name);
    d.Set("totalBytes", static_cast<double>(list[i].total_bytes));
    d.Set("freeBytes", static_cast<double>(list[i].free_bytes));
    d.Set("computeCapability",
          std::to_string(list[i].cc_major) + "." + std::to_string(list[i].cc_minor));
    arr.Set(static_cast<uint32_t>(i), d);
  }
  o.Set("cuda", arr);
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("devices", Napi::Function::New(env, devices));
  exports.Set("version", Napi::Function::New(env, version));
  exports.Set("cpuInfo", Napi::Function::New(env, cpu_info));
  exports.Set("loadModel", Napi::Function::New(env, load_model));
  exports.Set("NativeModel", AddonModel::define(env));
  exports.Set("bench", bench_exports(env));
  return exports;
}

}  // namespace

}  // namespace difflm_addon

static Napi::Object init_addon(Napi::Env env, Napi::Object exports) {
  return difflm_addon::init(env, exports);
}

NODE_API_MODULE(difflm, init_addon)
