// Tests of the SIMT emulator itself (compiled with simt.h like cuda/*.cu): warp collectives give
// the values the CUDA programming guide defines, cp.async copies land at their wait, and the
// faults it exists to find are reported (as a sticky launch failure naming the problem) rather
// than passing: a warp collective whose mask names an exited lane, a deadlock between a barrier
// and a collective, a shuffle from outside the mask, __trap, and a copy past a buffer's end.
// Launch configuration errors are not sticky, as on a GPU.
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "emu_internal.h"

namespace {

int g_failed = 0, g_passed = 0;

void expect(bool ok, const std::string& what) {
  std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what.c_str());
  ok ? ++g_passed : ++g_failed;
}

// Runs `launch` and returns the emulator's fault message ("" when the kernel ran cleanly).
std::string fault_of(const std::function<void()>& launch) {
  difflm_emu::clear_sticky_fault();
  launch();
  const cudaError_t e = cudaDeviceSynchronize();
  const std::string msg = e == cudaSuccess ? "" : cudaGetErrorString(e);
  difflm_emu::clear_sticky_fault();
  return msg;
}
bool contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

template <class T>
T* device(size_t n) {
  void* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) std::abort();
  return static_cast<T*>(p);
}
template <class T>
std::vector<T> host(const T* d, size_t n) {
  std::vector<T> v(n);
  cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return v;
}

// Per thread t of 64: xor 5, down 3, up 2, idx 7 (within width 16), match_any of t % 3, ballot
// of odd lanes.
__global__ void shuffles(int* out) {
  const int t = threadIdx.x, lane = t & 31;
  out[t * 6 + 0] = __shfl_xor_sync(0xffffffffu, t, 5);
  out[t * 6 + 1] = __shfl_down_sync(0xffffffffu, t, 3);
  out[t * 6 + 2] = __shfl_up_sync(0xffffffffu, t, 2);
  out[t * 6 + 3] = __shfl_sync(0xffffffffu, t, 7, 16);
  out[t * 6 + 4] = static_cast<int>(__match_any_sync(0xffffffffu, t % 3));
  out[t * 6 + 5] = static_cast<int>(__ballot_sync(0xffffffffu, lane & 1));
}

__global__ void block_sum(const float* x, float* out) {
  __shared__ float s[128];
  s[threadIdx.x] = x[threadIdx.x];
  __syncthreads();
  for (int half = 64; half > 0; half >>= 1) {
    if (static_cast<int>(threadIdx.x) < half) s[threadIdx.x] += s[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = s[0];
}

__global__ void exited_lane(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void barrier_vs_collective(int* out) {
  if (threadIdx.x == 0)
    out[0] = __shfl_sync(0xffffffffu, 1, 0);
  else
    __syncthreads();
}

__global__ void shuffle_outside_mask(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1, 20);
}

__global__ void traps() {
  __trap();
}

// One thread copies 16 bytes into shared memory with cp.async and reads them before and after
// the wait: before, the destination is undefined (the emulator's poison).
__global__ void async_copy(const uint32_t* src, uint32_t* before, uint32_t* after) {
  auto* s = static_cast<uint32_t*>(difflm_emu::dynamic_smem(16));
  difflm_emu::cp_async16(s, src, 16);
  difflm_emu::cp_async_commit();
  before[0] = s[0];
  difflm_emu::cp_async_wait(0);
  after[0] = s[0];
}

// cvt.rna.tf32.f32 on x[i] for i < n.
__global__ void round_tf32(const float* x, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] = difflm_emu::cvt_rna_tf32(x[i]);
}

// One m16n8k8 tf32 mma of a[16][8] . b[8][8] (k x n) + 1, each lane taking its fragments by the
// PTX ISA's formulas (g = lane / 4, t = lane % 4), which the emulator inverts on its own.
__global__ void mma_tf32(const float* a, const float* b, float* d) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  uint32_t fa[4], fb[2];
  const float av[4] = {a[g * 8 + t], a[(g + 8) * 8 + t], a[g * 8 + t + 4], a[(g + 8) * 8 + t + 4]};
  const float bv[2] = {b[t * 8 + g], b[(t + 4) * 8 + g]};
  std::memcpy(fa, av, 16);
  std::memcpy(fb, bv, 8);
  float acc[4] = {1.f, 1.f, 1.f, 1.f};
  difflm_emu::mma1688_tf32(acc, fa, fb);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

__global__ void one_per_thread(int* out) {
  out[threadIdx.x] = 1;
}

}  // namespace

int main() {
  {
    int* out = device<int>(64 * 6);
    expect(
        fault_of([&] { difflm_emu::launch("shuffles", shuffles, 1, 64, 0, nullptr, out); }) == "",
        "shuffles run");
    const auto v = host(out, 64 * 6);
    bool ok = true;
    for (int t = 0; t < 64; ++t) {
      const int lane = t & 31, base = t - lane;
      unsigned match = 0;
      for (int l = 0; l < 32; ++l)
        if ((base + l) % 3 == t % 3) match |= 1u << l;
      const int want[6] = {t ^ 5,
                           lane + 3 < 32 ? t + 3 : t,
                           lane >= 2 ? t - 2 : t,
                           base + (lane & 16) + 7,
                           static_cast<int>(match),
                           static_cast<int>(0xaaaaaaaau)};
      for (int k = 0; k < 6; ++k) ok = ok && v[t * 6 + k] == want[k];
    }
    expect(ok, "xor, down, up, idx (width 16), match_any and ballot give the guide's values");
    cudaFree(out);
  }
  {
    std::vector<float> x(128);
    float want = 0;
    for (int i = 0; i < 128; ++i) want += (x[i] = static_cast<float>(i % 7));
    float* dx = device<float>(128);
    float* dout = device<float>(1);
    cudaMemcpy(dx, x.data(), 128 * 4, cudaMemcpyHostToDevice);
    difflm_emu::launch("block_sum", block_sum, 1, 128, 0, nullptr, dx, dout);
    expect(host(dout, 1)[0] == want, "a shared-memory tree reduction with __syncthreads");
    cudaFree(dx);
    cudaFree(dout);
  }
  int* out = device<int>(32);
  expect(contains(fault_of([&] {
                    difflm_emu::launch("exited_lane", exited_lane, 1, 32, 0, nullptr, out);
                  }),
                  "exited"),
         "a collective naming an exited lane is a fault");
  expect(contains(fault_of([&] {
                    difflm_emu::launch("barrier_vs_collective", barrier_vs_collective, 1, 64, 0,
                                       nullptr, out);
                  }),
                  "deadlock"),
         "a barrier and a collective waiting on each other is a deadlock fault");
  expect(contains(fault_of([&] {
                    difflm_emu::launch("shuffle_outside_mask", shuffle_outside_mask, 1, 32, 0,
                                       nullptr, out);
                  }),
                  "outside the mask"),
         "a shuffle from a lane outside the mask is a fault");
  expect(
      contains(fault_of([&] { difflm_emu::launch("traps", traps, 2, 32, 0, nullptr); }), "__trap"),
      "__trap is a fault");
  {
    const uint32_t src[4] = {7, 8, 9, 10};
    uint32_t* dsrc = device<uint32_t>(4);
    uint32_t* before = device<uint32_t>(1);
    uint32_t* after = device<uint32_t>(1);
    cudaMemcpy(dsrc, src, 16, cudaMemcpyHostToDevice);
    difflm_emu::launch("async_copy", async_copy, 1, 1, 16, nullptr, dsrc, before, after);
    expect(host(before, 1)[0] != 7 && host(after, 1)[0] == 7,
           "cp.async data lands at its wait, not before");
    cudaFree(dsrc);
    cudaFree(before);
    cudaFree(after);
  }
  {
    // Ties go away from zero; below a tie rounds down; a carry reaches the exponent; inf stays.
    const float x[] = {1.f + 0x1p-11f,
                       -(1.f + 0x1p-11f),
                       1.f + 0x1p-11f - 0x1p-23f,
                       0x1.fffffp0f,
                       std::numeric_limits<float>::infinity(),
                       3.f};
    const float want[] = {
        1.f + 0x1p-10f, -(1.f + 0x1p-10f), 1.f, 2.f, std::numeric_limits<float>::infinity(), 3.f};
    const int n = 6;
    float* dx = device<float>(n);
    float* dout = device<float>(n);
    cudaMemcpy(dx, x, sizeof x, cudaMemcpyHostToDevice);
    difflm_emu::launch("round_tf32", round_tf32, 1, 1, 0, nullptr, dx, dout, n);
    const auto got = host(dout, n);
    expect(std::memcmp(got.data(), want, sizeof want) == 0,
           "cvt.rna.tf32.f32 rounds to nearest, ties away from zero");
    cudaFree(dx);
    cudaFree(dout);
  }
  {
    // Small integers and halves: exact in tf32, so the product is exact and any misplaced
    // fragment element shows. b's (0, 0) carries low bits the tensor core must ignore.
    float a[16 * 8], b[8 * 8];
    for (int i = 0; i < 16 * 8; ++i) a[i] = static_cast<float>((i * 7) % 11) - 5.f;
    for (int i = 0; i < 8 * 8; ++i) b[i] = 0.5f * static_cast<float>((i * 5) % 9) - 2.f;
    b[0] = 1.f + 0x1p-20f;
    float* da = device<float>(16 * 8);
    float* db = device<float>(8 * 8);
    float* dd = device<float>(16 * 8);
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b, sizeof b, cudaMemcpyHostToDevice);
    difflm_emu::launch("mma_tf32", mma_tf32, 1, 32, 0, nullptr, da, db, dd);
    const auto d = host(dd, 16 * 8);
    b[0] = 1.f;
    bool ok = true;
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 8; ++n) {
        float want = 1.f;
        for (int k = 0; k < 8; ++k) want += a[m * 8 + k] * b[k * 8 + n];
        ok = ok && d[m * 8 + n] == want;
      }
    expect(ok, "mma.sync m16n8k8 tf32: the PTX fragment layout, operands' low 13 bits ignored");
    // 1 + a b with a b = -2^-25: to nearest that is 1, toward zero (the tensor cores) 1 - 2^-24.
    std::memset(a, 0, sizeof a);
    std::memset(b, 0, sizeof b);
    a[0] = 0x1p-13f;
    b[0] = -0x1p-12f;
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b, sizeof b, cudaMemcpyHostToDevice);
    difflm_emu::launch("mma_tf32", mma_tf32, 1, 32, 0, nullptr, da, db, dd);
    const auto z = host(dd, 16 * 8);
    bool rz = z[0] == 1.f - 0x1p-24f;
    for (int i = 1; i < 16 * 8; ++i) rz = rz && z[i] == 1.f;
    expect(rz, "mma.sync sums are rounded toward zero, as on the tensor cores");
    cudaFree(da);
    cudaFree(db);
    cudaFree(dd);
  }
  expect(fault_of([&] {
           difflm_emu::launch("one_per_thread", one_per_thread, 1, 2048, 0, nullptr, out);
           expect(cudaGetLastError() == cudaErrorInvalidConfiguration,
                  "2048 threads per block: invalid configuration");
         }) == "",
         "a bad launch configuration is not sticky");
  std::vector<int> h(64);
  expect(
      cudaMemcpy(h.data(), out, 64 * sizeof(int), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
      "a copy past the end of a device buffer is refused");
  cudaFree(out);
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
