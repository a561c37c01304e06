// The CUDA runtime API calls difflm makes, implemented on host memory for the SIMT emulator
// (linked instead of cudart). One device (compute capability 8.0, DIFFLM_EMU_DEVICE_MEMORY
// bytes, 4 GiB by default); every stream is synchronous; device pointers are checked against
// the live allocations on every copy and set, so a copy past the end of a buffer is an error
// rather than silent corruption; a fault inside a kernel makes every later call fail, as a GPU
// context does.
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "emu_internal.h"

struct CUstream_st {
  int unused;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at;
  bool recorded;
};
struct CUmemPoolHandle_st {
  int unused;
};

namespace difflm_emu {
namespace {

struct Device {
  std::mutex mu;
  std::map<const unsigned char*, size_t> allocs;  // start -> bytes
  size_t used = 0;
  size_t capacity = 0;
  std::set<cudaStream_t> streams;
  std::map<const void*, size_t> smem_limits;
  std::string fault;
  // Frees refused under a sticky fault: like a GPU's, that memory is gone until the context is
  // reset (clear_sticky_fault below stands for the reset and frees it).
  std::vector<void*> lost;
  CUmemPoolHandle_st pool{};
  Device() {
    const char* env = std::getenv("DIFFLM_EMU_DEVICE_MEMORY");
    capacity = env ? std::strtoull(env, nullptr, 10) : (size_t(4) << 30);
  }
};
Device& dev() {
  static Device d;
  return d;
}
thread_local cudaError_t t_last = cudaSuccess;
std::atomic<long> g_launch_fault_in{-1}, g_alloc_fail_in{-1};

// Counts an event down to an injected failure: true from the n-th call on (once for launches).
bool count_down(std::atomic<long>& in, bool once) {
  long n = in.load();
  while (n >= 1 && !in.compare_exchange_weak(n, n - 1)) {
  }
  if (n != 1) return n == 0 && !once;
  if (once) in.store(-1);
  return true;
}

// Whether [p, p + n) lies inside one live allocation.
bool inside(const void* p, size_t n) {
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  const auto* c = static_cast<const unsigned char*>(p);
  auto it = d.allocs.upper_bound(c);
  if (it == d.allocs.begin()) return false;
  --it;
  const size_t offset = static_cast<size_t>(c - it->first);
  return offset <= it->second && n <= it->second - offset;
}

cudaError_t fail(cudaError_t e) {
  t_last = e;
  return e;
}

// The error a call returns before doing anything: the sticky fault, if any.
bool faulted() {
  return has_sticky_fault();
}

// A copy must stay inside one device buffer on each device side, and its host side must not be
// device memory (a swapped kind would work silently here, where both live in host memory).
cudaError_t check_copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (n == 0 || kind == cudaMemcpyDefault) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_dev != inside(dst, 1) || src_dev != inside(src, 1)) return fail(cudaErrorInvalidValue);
  if ((dst_dev && !inside(dst, n)) || (src_dev && !inside(src, n)))
    return fail(cudaErrorInvalidValue);
  const auto* d = static_cast<const unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (d < s + n && s < d + n) return fail(cudaErrorInvalidValue);  // overlap: undefined
  return cudaSuccess;
}

cudaError_t allocate(void** p, size_t n) {
  Device& d = dev();
  if (!p) return fail(cudaErrorInvalidValue);
  if (count_down(g_alloc_fail_in, false)) return fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(d.mu);
  if (n > d.capacity - d.used) return fail(cudaErrorMemoryAllocation);
  void* m = nullptr;
  // cudaMalloc aligns to 256 bytes; the exact size lets AddressSanitizer see the end.
  if (posix_memalign(&m, 256, n ? n : 1) != 0) return fail(cudaErrorMemoryAllocation);
  std::memset(m, 0xff, n);  // device memory starts undefined: NaN bytes
  d.allocs[static_cast<unsigned char*>(m)] = n;
  d.used += n;
  *p = m;
  return cudaSuccess;
}

cudaError_t release(void* p) {
  if (!p) return cudaSuccess;
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.allocs.find(static_cast<unsigned char*>(p));
  if (it == d.allocs.end()) return fail(cudaErrorInvalidValue);
  d.used -= it->second;
  d.allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}

void lose(void* p) {
  if (!p) return;
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.allocs.count(static_cast<unsigned char*>(p))) d.lost.push_back(p);
}

}  // namespace

const EmulatedDevice& emulated_device() {
  static const EmulatedDevice d = [] {
    const char* env = std::getenv("DIFFLM_EMU_CC");
    const int cc = env ? std::atoi(env) : 80;
    switch (cc) {
      case 75: return EmulatedDevice{7, 5, 64 * 1024};
      case 80: return EmulatedDevice{8, 0, 163 * 1024};
      case 86: return EmulatedDevice{8, 6, 99 * 1024};
      case 89: return EmulatedDevice{8, 9, 99 * 1024};
      default:
        std::fprintf(stderr, "difflm emulator: DIFFLM_EMU_CC=%s is not 75, 80, 86 or 89\n", env);
        std::exit(2);
    }
  }();
  return d;
}

void set_last_error(cudaError_t e) {
  t_last = e;
}

void set_sticky_fault(const std::string& why) {
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.fault.empty()) {
    d.fault = "unspecified launch failure (emulator: " + why + ")";
    std::fprintf(stderr, "difflm emulator: %s\n", why.c_str());
  }
}

bool has_sticky_fault() {
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  return !d.fault.empty();
}

void inject_launch_fault(long n) {
  g_launch_fault_in.store(n < 1 ? -1 : n);
}
void inject_allocation_failures(long n) {
  g_alloc_fail_in.store(n < 1 ? -1 : n);
}
bool take_injected_launch_fault() {
  return count_down(g_launch_fault_in, true);
}

void clear_sticky_fault() {
  t_last = cudaSuccess;
  std::vector<void*> lost;
  {
    Device& d = dev();
    std::lock_guard<std::mutex> lock(d.mu);
    d.fault.clear();
    lost.swap(d.lost);
  }
  for (void* p : lost) release(p);
}

size_t dynamic_smem_limit(const void* kernel) {
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.smem_limits.find(kernel);
  return it == d.smem_limits.end() ? 48 * 1024 : it->second;
}

bool valid_stream(cudaStream_t s) {
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  return s == nullptr || d.streams.count(s) > 0;
}

}  // namespace difflm_emu

using namespace difflm_emu;

// Every call after a kernel fault fails with it (cudaGetLastError reports it too, so it is not
// stored as the thread's last error).
#define EMU_STICKY()                              \
  do {                                            \
    if (faulted()) return cudaErrorLaunchFailure; \
  } while (0)

// A free under a sticky fault fails, and the memory stays allocated (Device::lost).
#define EMU_STICKY_FREE(p)           \
  do {                               \
    if (faulted()) {                 \
      lose(p);                       \
      return cudaErrorLaunchFailure; \
    }                                \
  } while (0)

extern "C" {

cudaError_t cudaGetLastError(void) {
  if (faulted()) return cudaErrorLaunchFailure;
  const cudaError_t e = t_last;
  t_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) {
  return faulted() ? cudaErrorLaunchFailure : t_last;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: {
      Device& d = dev();
      std::lock_guard<std::mutex> lock(d.mu);
      if (d.fault.empty()) return "unspecified launch failure";
      // Kept for good: the caller may hold the text after the fault is cleared (self-test).
      static std::set<std::string> texts;
      return texts.insert(d.fault).first->c_str();
    }
    default: return "unknown error";
  }
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "difflm SIMT emulator (CPU)");
  p->totalGlobalMem = dev().capacity;
  p->major = emulated_device().cc_major;
  p->minor = emulated_device().cc_minor;
  p->multiProcessorCount = kSms;
  p->l2CacheSize = 4 << 20;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = emulated_device().smem_optin;
  p->maxThreadsPerBlock = 1024;
  p->warpSize = 32;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = emulated_device().cc_major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = emulated_device().cc_minor; break;
    case cudaDevAttrMultiProcessorCount: *value = kSms; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = static_cast<int>(emulated_device().smem_optin);
      break;
    case cudaDevAttrL2CacheSize: *value = 4 << 20; break;
    case cudaDevAttrMemoryPoolsSupported: *value = 1; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  EMU_STICKY();
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  *free_bytes = d.capacity - d.used;
  *total = d.capacity;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t n) {
  EMU_STICKY();
  return allocate(p, n);
}
cudaError_t cudaFree(void* p) {
  EMU_STICKY_FREE(p);
  return release(p);
}
cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t s) {
  EMU_STICKY();
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  return allocate(p, n);
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  EMU_STICKY_FREE(p);
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  return release(p);
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *pool = &dev().pool;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr, void*) {
  return pool == &dev().pool ? cudaSuccess : fail(cudaErrorInvalidValue);
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t) {
  return pool == &dev().pool ? cudaSuccess : fail(cudaErrorInvalidValue);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  EMU_STICKY();
  if (const cudaError_t e = check_copy(dst, src, n, kind)) return e;
  if (n) std::memcpy(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t s) {
  EMU_STICKY();
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMemcpy(dst, src, n, kind);
}
cudaError_t cudaMemcpyFromSymbolAsync(void* dst, const void* symbol, size_t n, size_t offset,
                                      cudaMemcpyKind, cudaStream_t s) {
  EMU_STICKY();
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  std::memcpy(dst, static_cast<const unsigned char*>(symbol) + offset, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t n) {
  EMU_STICKY();
  if (n && !inside(p, n)) return fail(cudaErrorInvalidValue);
  if (n) std::memset(p, value, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t s) {
  EMU_STICKY();
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMemset(p, value, n);
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  EMU_STICKY();
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || static_cast<size_t>(value) > emulated_device().smem_optin)
    return fail(cudaErrorInvalidValue);
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  d.smem_limits[func] = static_cast<size_t>(value);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  return cudaStreamCreateWithFlags(s, 0);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  EMU_STICKY();
  *s = new CUstream_st{};
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  d.streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  Device& d = dev();
  std::lock_guard<std::mutex> lock(d.mu);
  if (!d.streams.erase(s)) return fail(cudaErrorInvalidResourceHandle);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  EMU_STICKY();
  return valid_stream(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaDeviceSynchronize(void) {
  EMU_STICKY();
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  return cudaEventCreateWithFlags(e, 0);
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) {
  EMU_STICKY();
  *e = new CUevent_st{{}, false};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  EMU_STICKY();
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  e->at = std::chrono::steady_clock::now();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
  EMU_STICKY();
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t) {
  EMU_STICKY();
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  EMU_STICKY();
  if (!a->recorded || !b->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}

}  // extern "C"
