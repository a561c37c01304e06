// The CUDA backend: weights uploaded once, activations and logits in device memory, every
// kernel launched on one stream; only token ids go up and candidates come down each step.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend.h"
#include "block_cache.h"

namespace difflm {

namespace cuda {
class Blas;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device);
  ~CudaBackend() override;

  std::string name() const override;
  int threads() const override { return 1; }

  void* alloc(size_t bytes) override;
  void release(void* p) override;
  void to_backend(void* dst, const void* host_src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
  const void* weight(const TensorView& t) override;
  size_t free_bytes() const override;
  void trim() noexcept override;
  // Bytes held in released buffers kept for reuse (given back by trim()).
  size_t cached_bytes() const { return cache_.bytes(); }
  std::string broken() override;

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

  // GPU time per backend operation, for a breakdown of a decoding step (the GPU check): with
  // profiling on, every operation is bracketed by two CUDA events on the stream, so its time
  // covers its kernels and any gap between them. Off by default (events cost host time).
  struct OpTime {
    std::string op;
    int64_t calls = 0;
    double ms = 0;
  };
  void set_profiling(bool on);
  // 16-bit GEMMs on cuBLAS when it loads (cuda/blas.h; the default), or on our own kernels.
  void set_cublas(bool on) { use_blas_ = on; }
  // Which GEMM the 16-bit weights run on: "cuBLAS (<library>)" or "own kernels (<why>)".
  std::string gemm_library();
  // Waits for the stream, then returns the totals since profiling was switched on or last
  // taken (sorted by time, largest first) and clears them.
  std::vector<OpTime> take_profile();

 private:
  friend class OpTimer;
  void* event();          // a cudaEvent_t from the pool
  void harvest();         // adds the finished event pairs (a prefix of the list) to the totals
  void activate() const;  // makes this backend's device current on the calling thread
  // A device scratch area of at least `bytes`, grown on demand (one user at a time: the model
  // serialises its calls).
  void* scratch(int slot, size_t bytes);
  // cudaMalloc of `bytes`; on running out, frees the cached blocks and tries again, then throws
  // OutOfMemory naming the size and the free memory.
  void* device_alloc(size_t bytes);
  // Waits for the stream and gives the cached blocks back to the device.
  void free_cached();
  // Puts a block in the cache, or frees it at once when the cache cannot take it.
  void release_block(void* p, size_t bytes) noexcept;

  int device_;
  void* stream_ = nullptr;                  // cudaStream_t
  std::map<const void*, void*> weights_;    // host tensor data -> device copy
  BlockCache cache_;                        // blocks released by Buffers, for the next alloc()
  std::unordered_map<void*, size_t> live_;  // blocks alloc() handed out -> their size
  struct Scratch {
    void* p = nullptr;
    size_t bytes = 0;
  };
  Scratch scratch_[8];
  bool use_blas_ = true, blas_tried_ = false;
  std::unique_ptr<cuda::Blas> blas_;  // opened on the first 16-bit GEMM
  std::string blas_why_;              // why it is not there
  cuda::Blas* blas();                 // nullptr: own kernels
  struct Profile {
    bool on = false;
    std::vector<void*> pool;  // unused events
    struct Pending {
      const char* op;
      void *start, *stop;
    };
    std::vector<Pending> pending;
    std::map<std::string, OpTime> totals;
  } prof_;
};

}  // namespace difflm
