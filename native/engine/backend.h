// The kernel interface every backend implements (CPU now; CUDA later). Model and decode-loop
// code is written once against it. Activations are float32 buffers owned by the caller;
// weights are WeightMatrix views of the checkpoint.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cpu/gemm.h"
#include "cpu/ops.h"

namespace difflm {

class Backend {
 public:
  virtual ~Backend() = default;
  // Name for diagnostics ("cpu").
  virtual std::string name() const = 0;
  // Threads this backend computes with.
  virtual int threads() const = 0;

  // C[M x W.rows] = A[M x W.cols] . W^T
  virtual void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C) = 0;
  // out = rmsnorm(x) * w per row
  virtual void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt,
                       float eps, float* out) = 0;
  // Rotate-half rotary embedding in place; row r is at position pos0 + r.
  virtual void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                    const RopeTable& table) = 0;
  // out = silu(gate) * up
  virtual void swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;
  // x += y
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // Scaled dot-product attention of one sequence (see cpu/ops.h for the layout).
  virtual void attention(const float* q, const float* k, const float* v, float* out, int64_t nq,
                         int64_t nk, int64_t n_heads, int64_t n_kv_heads, int64_t hd,
                         int64_t q_pos0, bool causal) = 0;
  // out[i] = table[ids[i]] as float32
  virtual void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                         float* out) = 0;
  // Runs fn(begin, end) over [0, n) on the backend's threads (for per-row sampling work).
  virtual void parallel_rows(int64_t n, const std::function<void(int64_t, int64_t)>& fn) = 0;
};

}  // namespace difflm
