// Measures this CPU's arithmetic ceiling: FMA (float32) and BF16 dot-product throughput with
// register-resident accumulators on every thread, so GEMM figures can be put against it.
#pragma once

namespace difflm {

class ThreadPool;

enum class PeakKind { Fma32, Bf16Dot };

// GFLOP/s over about `ms` milliseconds on all the pool's threads (a multiply-add counts 2).
// Returns 0 when the CPU lacks the instructions (BF16 dot without AVX512-BF16).
double measure_peak_gflops(PeakKind kind, ThreadPool& pool, double ms);

}  // namespace difflm
