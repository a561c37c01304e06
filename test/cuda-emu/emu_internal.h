// What the emulator's scheduler (simt.cpp) and runtime (runtime.cpp) tell each other.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace difflm_emu {

// A non-sticky error of the last call or launch (cudaGetLastError returns and clears it).
void set_last_error(cudaError_t e);
// A fault inside a kernel: like on a GPU, every later call fails (the context is unusable).
void set_sticky_fault(const std::string& why);
bool has_sticky_fault();
// For the emulator's own tests only: the device runs again, and the memory whose frees the
// fault refused is freed (as a context reset would).
void clear_sticky_fault();
// Fault injection, for the check's cases that a real GPU cannot produce on demand: the n-th
// kernel launch from now faults (sticky, as a crashed kernel), and from the n-th device
// allocation from now on every allocation reports out of memory (n < 0: stop).
void inject_launch_fault(long n);
void inject_allocation_failures(long n);
bool take_injected_launch_fault();
// Dynamic shared memory a kernel may use (48 KiB, or what cudaFuncSetAttribute allowed).
size_t dynamic_smem_limit(const void* kernel);
// Whether `s` is the default stream or one cudaStreamCreate made and not destroyed.
bool valid_stream(cudaStream_t s);

// The emulated device: compute capability DIFFLM_EMU_CC (75, 80, 86 or 89; 80 by default) with
// that generation's opt-in shared memory per block, which is what picks the GEMM kernels
// (7.5: TcSync and the float32 path for BF16; 8.0: TcBig; 8.6/8.9: TcSmall). Never 9.0: the
// emulator has no wgmma.
struct EmulatedDevice {
  int cc_major, cc_minor;
  size_t smem_optin;
};
const EmulatedDevice& emulated_device();
constexpr int kSms = 4;

}  // namespace difflm_emu
