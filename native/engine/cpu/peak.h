// Measures this CPU's ceilings: FMA (float32) and BF16 dot-product throughput with
// register-resident accumulators on every thread, so GEMM figures can be put against it, and
// the memory read bandwidth that bounds a GEMV (one activation row: left-to-right decoding).
#pragma once

#include <cstddef>

namespace difflm {

class ThreadPool;

enum class PeakKind { Fma32, Bf16Dot };

// GFLOP/s over about `ms` milliseconds on all the pool's threads (a multiply-add counts 2).
// Returns 0 when the CPU lacks the instructions (BF16 dot without AVX512-BF16).
double measure_peak_gflops(PeakKind kind, ThreadPool& pool, double ms);

// GB/s of reading a `bytes` buffer (larger than the caches) start to end on all the pool's
// threads, each its own contiguous slice, best of the passes made in about `ms` milliseconds.
double measure_read_gbps(ThreadPool& pool, size_t bytes, double ms);

}  // namespace difflm
