// The CUDA backend's device memory (cuda_backend.cpp with block_cache.h): a released buffer is
// handed to the next allocation without a cudaFree/cudaMalloc pair, work queued before the
// release still sees its old contents, trim() (after every request) gives cached blocks back,
// running out gives a typed error and leaves the backend usable, and cached blocks go back to
// the device when an allocation needs their memory.
#include <algorithm>
#include <string>
#include <vector>

#include "check.h"
#include "cuda_backend.h"
#include "errors.h"

using namespace difflm_gpu;
using namespace difflm;

GPU_CASE(backend_memory_reuse_and_out_of_memory) {
  CudaBackend be(0);
  void* a = be.alloc(1000000);
  be.release(a);
  void* b = be.alloc(1000001);
  expect("backend memory: a released block serves the next allocation of a nearby size", a == b);
  be.release(b);

  // Stream order: x += y is queued, y's block is released and reused for z, which is filled
  // with other values; the sum must still have read y's values.
  const int64_t n = int64_t(1) << 24;  // 64 MiB per buffer
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  void* x = be.alloc(bytes);
  void* y = be.alloc(bytes);
  std::vector<float> host(static_cast<size_t>(n), 1.f);
  be.to_backend(x, host.data(), bytes);
  std::fill(host.begin(), host.end(), 2.f);
  be.to_backend(y, host.data(), bytes);
  be.add(static_cast<float*>(x), static_cast<const float*>(y), n);
  be.release(y);
  void* z = be.alloc(bytes);
  std::fill(host.begin(), host.end(), 5.f);
  be.to_backend(z, host.data(), bytes);
  be.to_host(host.data(), x, bytes);
  int64_t wrong = 0;
  for (float v : host) wrong += v != 3.f;
  expect("backend memory: work queued before a release reads the old contents",
         z == y && wrong == 0,
         std::to_string(wrong) + " sums differ from 1 + 2" + (z == y ? "" : " (block not reused)"));
  be.release(x);
  be.release(z);
  expect("backend memory: released buffers are kept", be.cached_bytes() >= 2 * bytes);
  be.trim();
  expect("backend memory: trim gives them back", be.cached_bytes() == 0);

  // More than the device has: OutOfMemory naming the size; the backend still works.
  const size_t free = be.free_bytes();
  bool typed = false;
  std::string msg;
  try {
    be.release(be.alloc(2 * free + (size_t(1) << 30)));
  } catch (const EngineError& e) {
    typed = e.code() == ErrorCode::OutOfMemory;
    msg = e.what();
  }
  expect("backend memory: too large an allocation is OutOfMemory with the sizes",
         typed && msg.find("bytes free") != std::string::npos, msg);
  expect("backend memory: usable after running out", be.broken().empty(), be.broken());

  // Two cached blocks of 40 % of the free memory; a request for 60 % fits only once they are
  // given back to the device.
  const size_t now = be.free_bytes(), part = now / 10 * 4, big = now / 10 * 6;
  void* p1 = be.alloc(part);
  void* p2 = be.alloc(part);
  be.release(p1);
  be.release(p2);
  bool fit = false;
  try {
    be.release(be.alloc(big));
    fit = true;
  } catch (const EngineError& e) {
    msg = e.what();
  }
  expect("backend memory: cached blocks are freed when an allocation needs them", fit, msg);
  be.trim();
  const size_t after = be.free_bytes();
  expect("backend memory: all of it free again after trim", after + (size_t(256) << 20) >= now,
         std::to_string(after) + " bytes free, " + std::to_string(now) + " before");
}
