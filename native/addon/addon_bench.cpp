// Kernel benchmark hooks for bench/ (tinybench): a GEMM with its buffers prepared once, run
// synchronously per call so the timing is the kernel's, and the CPU's measured ceilings.
#include "addon_bench.h"

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "convert.h"
#include "cpu/gemm.h"
#include "cpu/peak.h"
#include "cpu/thread_pool.h"
#include "decode/confidence.h"

namespace difflm_addon {

namespace {

struct GemmCase {
  int64_t M, N, K;
  difflm::DType dtype;
  difflm::GemmPath path;
  std::vector<float> A, C, W32;
  std::vector<uint16_t> W16;
  difflm::WeightMatrix W;
  std::unique_ptr<difflm::ThreadPool> pool;
};

difflm::GemmPath parse_path(Napi::Env env, const std::string& s) {
  for (auto p : difflm::gemm_paths_available())
    if (s == difflm::gemm_path_name(p)) return p;
  throw Napi::Error::New(env, "GEMM path \"" + s + "\" is not available on this CPU");
}

Napi::Value gemm_bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  auto c = std::make_shared<GemmCase>();
  c->M = get_int(o, "m"), c->N = get_int(o, "n"), c->K = get_int(o, "k");
  const std::string dt = get_string(o, "dtype");
  c->dtype = dt == "f32"   ? difflm::DType::F32
             : dt == "f16" ? difflm::DType::F16
                           : difflm::DType::BF16;
  c->path = parse_path(env, get_string(o, "path"));
  c->pool = std::make_unique<difflm::ThreadPool>(static_cast<int>(get_int(o, "threads")));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  c->A.resize(c->M * c->K);
  for (auto& x : c->A) x = dist(rng);
  c->C.resize(c->M * c->N);
  if (c->dtype == difflm::DType::F32) {
    c->W32.resize(c->N * c->K);
    for (auto& x : c->W32) x = dist(rng);
    c->W = {c->W32.data(), c->dtype, c->N, c->K};
  } else {
    c->W16.resize(c->N * c->K);
    for (auto& x : c->W16)
      x = c->dtype == difflm::DType::BF16 ? difflm::f32_to_bf16(dist(rng))
                                          : difflm::f32_to_f16(dist(rng));
    c->W = {c->W16.data(), c->dtype, c->N, c->K};
  }
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("flops", Napi::Number::New(env, 2.0 * c->M * c->N * c->K));
  bench.Set("weightBytes",
            Napi::Number::New(env, static_cast<double>(c->N * c->K) *
                                       static_cast<double>(difflm::dtype_size(c->dtype))));
  bench.Set("run", Napi::Function::New(env, [c](const Napi::CallbackInfo& i) {
              difflm::gemm(c->A.data(), c->M, c->W, c->C.data(), c->pool.get(), c->path);
              return i.Env().Undefined();
            }));
  return bench;
}

// The confidence of one row (decode/confidence.h), and for comparison the float64 softmax that
// computes one float64 exp per token (the engine's definition before the segmented one).
struct ConfidenceCase {
  std::vector<float> row;
  double sink = 0;
};

double float64_softmax(const std::vector<float>& f, size_t x0) {
  float mx = -std::numeric_limits<float>::infinity();
  for (float x : f) mx = std::max(mx, x);
  double sum = 0;
  for (float x : f) sum += std::exp(static_cast<double>(x) - mx);
  return std::exp(static_cast<double>(f[x0]) - mx) / sum;
}

Napi::Value confidence_bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  auto c = std::make_shared<ConfidenceCase>();
  c->row.resize(static_cast<size_t>(get_int(o, "vocab")));
  const bool reference = get_string(o, "method") == "float64";
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.f, 3.f);
  for (auto& x : c->row) x = dist(rng);
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("bytes", Napi::Number::New(env, 4.0 * static_cast<double>(c->row.size())));
  bench.Set("run", Napi::Function::New(env, [c, reference](const Napi::CallbackInfo& i) {
              c->sink += reference ? float64_softmax(c->row, 7)
                                   : difflm::softmax_confidence(
                                         c->row.data(), static_cast<int64_t>(c->row.size()), 7);
              return i.Env().Undefined();
            }));
  return bench;
}

Napi::Value peak_gflops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  difflm::ThreadPool pool(info[1].As<Napi::Number>().Int32Value());
  const double ms = info[2].As<Napi::Number>().DoubleValue();
  const auto k = kind == "bf16dot" ? difflm::PeakKind::Bf16Dot : difflm::PeakKind::Fma32;
  return Napi::Number::New(env, difflm::measure_peak_gflops(k, pool, ms));
}

Napi::Value read_gbps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  difflm::ThreadPool pool(info[0].As<Napi::Number>().Int32Value());
  const double mib = info[1].As<Napi::Number>().DoubleValue();
  const double ms = info[2].As<Napi::Number>().DoubleValue();
  return Napi::Number::New(
      env, difflm::measure_read_gbps(pool, static_cast<size_t>(mib * 1024 * 1024), ms));
}

Napi::Value gemm_paths(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto paths = difflm::gemm_paths_available();
  auto arr = Napi::Array::New(env, paths.size());
  for (size_t i = 0; i < paths.size(); ++i) arr.Set(i, difflm::gemm_path_name(paths[i]));
  return arr;
}

}  // namespace

Napi::Object bench_exports(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("gemm", Napi::Function::New(env, gemm_bench));
  o.Set("peakGflops", Napi::Function::New(env, peak_gflops));
  o.Set("gemmPaths", Napi::Function::New(env, gemm_paths));
  o.Set("readGbps", Napi::Function::New(env, read_gbps));
  o.Set("confidence", Napi::Function::New(env, confidence_bench));
  return o;
}

}  // namespace difflm_addon
