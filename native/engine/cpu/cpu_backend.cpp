#include "cpu_backend.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "../decode/masked.h"
#include "../decode/sampling.h"
#include "../errors.h"
#include "../rng.h"
#include "../safetensors.h"

namespace difflm {

CpuBackend::CpuBackend(int threads, GemmPath path) : pool_(threads), path_(path) {}

void CpuBackend::gemm(const float* A, int64_t M, const WeightMatrix& W, float* C) {
  difflm::gemm(A, M, W, C, &pool_, path_);
}

void CpuBackend::rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt,
                         float eps, float* out) {
  difflm::rmsnorm(x, rows, dim, w, wt, eps, out, &pool_);
}

void CpuBackend::rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                      const RopeTable& table) {
  rope_apply(x, rows, heads, head_dim, pos0, table, &pool_);
}

void CpuBackend::swiglu(const float* gate, const float* up, float* out, int64_t n) {
  difflm::swiglu(gate, up, out, n, &pool_);
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  pool_.parallel_for(n, 8192,
                     [&](int64_t i0, int64_t i1) { add_inplace(x + i0, y + i0, i1 - i0); });
}

void CpuBackend::add_bias(float* x, int64_t rows, int64_t dim, const void* bias, DType bt) {
  pool_.parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(dim, 1)),
                     [&](int64_t r0, int64_t r1) { add_bias_rows(x, r0, r1, dim, bias, bt); });
}

void CpuBackend::attention(const float* q, const float* k, const float* v, float* out, int64_t nq,
                           int64_t nk, int64_t n_heads, int64_t n_kv_heads, int64_t hd,
                           int64_t q_pos0, bool causal) {
  difflm::attention(q, k, v, out, nq, nk, n_heads, n_kv_heads, hd, q_pos0, causal, &pool_);
}

void CpuBackend::embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                           float* out) {
  embedding_gather(table, dt, dim, ids, n, out);
}

void* CpuBackend::alloc(size_t bytes) {
  // 64-byte alignment: whole cache lines, and aligned vector loads where kernels want them.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p)
    throw EngineError(ErrorCode::OutOfMemory,
                      "out of memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}

void CpuBackend::release(void* p) {
  std::free(p);
}

void CpuBackend::to_backend(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

const void* CpuBackend::weight(const TensorView& t) {
  return t.data;
}  // zero copy

size_t CpuBackend::free_bytes() const {
  return SIZE_MAX;
}

void CpuBackend::cfg_mix(float* c, const float* u, int64_t n, float scale) {
  pool_.parallel_for(n, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) c[i] = u[i] + scale * (c[i] - u[i]);
  });
}

void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memmove(dst, src, bytes);
}

void CpuBackend::sample_candidates(float* logits, int64_t rows, int64_t vocab, int64_t row0,
                                   const int32_t* canvas, const MaskedRequest& req, int64_t step,
                                   int32_t* tokens, double* confidence) {
  pool_.parallel_for(rows, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t pos = row0 + i;
      if (canvas[pos] != req.mask_id) continue;  // committed: never selected again
      const Candidate c = sample_candidate(logits + i * vocab, vocab, req, step, pos);
      tokens[i] = c.token;
      confidence[i] = c.confidence;
    }
  });
}

int32_t CpuBackend::sample_next(float* logits, int64_t vocab, const MaskedRequest& draw,
                                const TopKTopP& filter, int64_t step, int64_t pos) {
  return sample_row_filtered(logits, vocab, draw, filter, step, pos).token;
}

void CpuBackend::commit(const int32_t* tokens, const double* confidence, int32_t* canvas,
                        int64_t row0, int64_t rows, int32_t mask_id, const CommitRule& rule,
                        std::vector<std::pair<int32_t, int32_t>>* committed) {
  std::vector<uint8_t> eligible(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) eligible[i] = canvas[row0 + i] == mask_id;
  for (const int64_t i : select_commits(confidence, eligible.data(), rows, rule)) {
    canvas[row0 + i] = tokens[i];
    committed->emplace_back(static_cast<int32_t>(row0 + i), tokens[i]);
  }
}

}  // namespace difflm
