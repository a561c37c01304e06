// GEMM of activations by weights: C[M x N] = A[M x K] . W[N x K]^T, A and C float32,
// W float32, float16 or bfloat16 (PyTorch Linear layout, zero copy from the checkpoint),
// accumulation in float32. Kernels are picked at run time from the CPU's features.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../dtype.h"

namespace difflm {

class ThreadPool;

// A weight matrix of `rows` x `cols` elements, row-major, rows contiguous.
struct WeightMatrix {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;  // N: output features
  int64_t cols = 0;  // K: input features
};

enum class GemmPath {
  Portable,    // plain C++, any CPU
  Avx2,        // AVX2 + FMA (+ F16C for float16 weights)
  Avx512,      // AVX-512 F/BW/VL
  Avx512Bf16,  // AVX512-BF16 dot products for bfloat16 weights (activations rounded to bf16)
};

const char* gemm_path_name(GemmPath p);
// Every path this CPU can run, from the slowest to the fastest.
std::vector<GemmPath> gemm_paths_available();
// The fastest path for this CPU.
GemmPath gemm_best_path();
// The path the engine uses: the fastest, unless the environment variable DIFFLM_GEMM_PATH names
// another available one ("portable", "avx2", "avx512", "avx512bf16"; for tests and debugging).
GemmPath gemm_default_path();

// C = A . W^T. `pool` may be null (single thread). `path` must be available on this CPU.
void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C, ThreadPool* pool,
          GemmPath path);
void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C, ThreadPool* pool);

// ---- Kernel entry points, one per path (internal). Each computes the block
// C[m0:m1, n0:n1] with leading dimensions K (A) and N (C). `A16` is A rounded to bf16, used
// only by the BF16-dot path for bf16 weights.
struct GemmBlock {
  const float* A;
  const uint16_t* A16;
  const WeightMatrix* W;
  float* C;
  int64_t M, N, K;
  int64_t m0, m1, n0, n1;
};
void gemm_block_portable(const GemmBlock& b);
void gemm_block_avx2(const GemmBlock& b);
void gemm_block_avx512(const GemmBlock& b);
void gemm_block_avx512bf16(const GemmBlock& b);
// Rounds n floats to bf16 exactly as f32_to_bf16 (AVX-512 when available), split over `pool`
// when given.
void round_to_bf16(const float* src, uint16_t* dst, int64_t n, ThreadPool* pool = nullptr);
void round_to_bf16_avx512(const float* src, uint16_t* dst, int64_t n);

}  // namespace difflm
