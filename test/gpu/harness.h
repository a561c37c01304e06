// Internals of the GPU check shared by check.cpp and main.cpp only (cases use check.h): the
// measured ceilings that report() compares with, the final table, and the pass/fail counts.
#pragma once

#include <string>

namespace difflm_gpu {

struct Ceilings {
  double copy_gbs = 0;      // device-to-device copy, read + write bytes per second / 1e9
  double bf16_tflops = 0;   // large BF16 GEMM
  std::string bf16_source;  // "cuBLAS ..." or "own gemm (cuBLAS not loaded)"
};
void set_ceilings(const Ceilings& c);

int passed_count();
int failed_count();
// Prints the report() table, then "N passed, M failed"; returns the exit code (0 iff none failed).
int finish();

}  // namespace difflm_gpu
