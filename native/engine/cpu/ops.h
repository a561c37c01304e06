// Elementwise and attention kernels of the CPU backend, float32 activations. Each has a plain
// definition written for clarity first; the compiler vectorises the inner loops.
#pragma once

#include <cstdint>

#include "../dtype.h"

namespace difflm {

class ThreadPool;

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for `rows` rows of `dim` (w of type wt).
void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
             float* out, ThreadPool* pool);

// Rotary embedding tables for positions [0, max_pos): cos and sin of pos * inv_freq[j],
// j < head_dim / 2, computed in float32 as PyTorch does (inv_freq = 1 / theta^(2j / head_dim)).
struct RopeTable {
  int64_t max_pos = 0, half = 0;
  float* cos = nullptr;  // [max_pos][half], owned by the caller's storage
  float* sin = nullptr;
};
void rope_fill(RopeTable& t, double theta);

// Rotate-half rotary embedding in place on x[rows][heads][head_dim]; row r is at position pos0 + r.
void rope_apply(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                const RopeTable& t, ThreadPool* pool);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool);

// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t n);

// x[r][j] += bias[j] (bias in dtype bt) for the rows [r0, r1) of x[][dim].
void add_bias_rows(float* x, int64_t r0, int64_t r1, int64_t dim, const void* bias, DType bt);

// Scaled dot-product attention for one sequence. q: [nq][n_heads][hd] for query positions
// q_pos0 .. q_pos0+nq-1; k, v: [nk][n_kv_heads][hd] for key positions 0 .. nk-1; out like q.
// Query heads share KV heads in groups of n_heads / n_kv_heads. `causal` masks keys after the
// query position. Scores and softmax in float32, scaled by 1/sqrt(hd).
void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
               int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0, bool causal,
               ThreadPool* pool);

// Rows of a (possibly bf16/f16) embedding table gathered as float32: out[i] = table[ids[i]].
void embedding_gather(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                      float* out);

}  // namespace difflm
