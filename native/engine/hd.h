// Functions shared by the CPU and CUDA backends, bit for bit: DIFFLM_HD marks them for both
// compilers, and the *_rn helpers spell out single roundings. Both compilers contract a * b + c
// into an FMA on their own where the target has one (nvcc: --fmad=true; g++: -ffp-contract=fast
// by default, even with -std=c++17), so shared arithmetic either calls fmaf/fma explicitly or
// goes through these helpers, and the CPU files that use them (native/engine/decode/) are built
// with -ffp-contract=off (CMakeLists.txt, binding.gyp).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define DIFFLM_HD __host__ __device__ __forceinline__
#else
#define DIFFLM_HD inline
#endif

namespace difflm {

DIFFLM_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DIFFLM_HD double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
DIFFLM_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
DIFFLM_HD float div_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
DIFFLM_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

}  // namespace difflm
