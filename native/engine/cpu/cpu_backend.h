// The CPU backend: the reference every other backend is checked against.
#pragma once

#include <memory>

#include "../backend.h"
#include "thread_pool.h"

namespace difflm {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads, GemmPath path = gemm_default_path());

  std::string name() const override { return "cpu"; }
  int threads() const override { return pool_.threads(); }
  GemmPath gemm_path() const { return path_; }

  void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C) override;
  void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
               float* out) override;
  void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
            const RopeTable& table) override;
  void swiglu(const float* gate, const float* up, float* out, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* x, int64_t rows, int64_t dim, const void* bias, DType bt) override;
  void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
                 int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0,
                 bool causal) override;
  void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                 float* out) override;
  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void to_backend(void* dst, const void* host_src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
  const void* weight(const TensorView& t) override;
  size_t free_bytes() const override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void cfg_mix(float* c, const float* u, int64_t n, float scale) override;
  void sample_candidates(float* logits, int64_t rows, int64_t vocab, int64_t row0,
                         const int32_t* canvas, const MaskedRequest& req, int64_t step,
                         int32_t* tokens, double* confidence) override;
  int32_t sample_next(float* logits, int64_t vocab, const MaskedRequest& draw,
                      const TopKTopP& filter, int64_t step, int64_t pos) override;
  void commit(const int32_t* tokens, const double* confidence, int32_t* canvas, int64_t row0,
              int64_t rows, int32_t mask_id, const CommitRule& rule,
              std::vector<std::pair<int32_t, int32_t>>* committed) override;

 private:
  ThreadPool pool_;
  GemmPath path_;
};

}  // namespace difflm
