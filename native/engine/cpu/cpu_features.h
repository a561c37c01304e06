// What the CPU can do, read once at start-up; kernels are chosen from it at run time.
#pragma once

#include <string>

namespace difflm {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;  // with BW and VL, which our AVX-512 kernels also use
  bool avx512bf16 = false;
};

// Detected features (CPUID and OS support for the wider registers); cached after the first call.
const CpuFeatures& cpu_features();

// Logical cores this process may run on.
int available_cores();

}  // namespace difflm
