// The kernel interface every backend implements (CPU, CUDA). Model and decode-loop code is
// written once against it. Activations live in backend memory (Buffer): host memory for the
// CPU, device memory for CUDA; weights are WeightMatrix views whose data the backend prepared
// (the mapped checkpoint itself on the CPU, an uploaded copy on a GPU).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/ops.h"
#include "decode/select.h"

namespace difflm {

struct TensorView;
struct MaskedRequest;
struct Candidate;
struct TopKTopP;

class Backend {
 public:
  virtual ~Backend() = default;
  // Name for diagnostics ("cpu").
  virtual std::string name() const = 0;
  // Threads this backend computes with.
  virtual int threads() const = 0;

  // ---- memory
  // Backend memory of `bytes` (uninitialised); throws EngineError(OutOfMemory) naming the size.
  virtual void* alloc(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void to_backend(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void to_host(void* host_dst, const void* src, size_t bytes) = 0;
  // The tensor's data as this backend reads it (uploaded once on first use where needed).
  virtual const void* weight(const TensorView& t) = 0;
  // Bytes the backend can still allocate, or SIZE_MAX when it cannot tell (host memory).
  virtual size_t free_bytes() const = 0;
  // Gives back memory kept for reuse (a GPU's cache of released buffers) once a request is
  // over, so that other models and programs can have it. Never throws.
  virtual void trim() noexcept {}
  // After an error: whether the backend can still run (a GPU whose context hit a sticky fault,
  // such as an illegal address, cannot). Empty when usable, else the reason.
  virtual std::string broken() { return {}; }

  // Copies `bytes` within backend memory.
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;

  // ---- decode-loop kernels (the canvas, logits and candidates stay in backend memory)
  // c = u + scale * (c - u), element-wise (classifier-free guidance).
  virtual void cfg_mix(float* c, const float* u, int64_t n, float scale) = 0;
  // Candidates for the window of canvas positions [row0, row0 + rows), whose logits are the
  // rows of `logits` ([rows][vocab], modified in place): token and confidence of sample_row()
  // at this step (with random remasking, confidence = the Remask draw for the position), written
  // to tokens[rows] and confidence[rows]. Rows whose canvas entry is not the mask may be skipped
  // (their outputs are unspecified). All pointers are backend memory.
  virtual void sample_candidates(float* logits, int64_t rows, int64_t vocab, int64_t row0,
                                 const int32_t* canvas, const MaskedRequest& req, int64_t step,
                                 int32_t* tokens, double* confidence) = 0;
  // The next token of left-to-right decoding from one row of logits (backend memory, modified
  // in place): sample_row_filtered()'s draw at canvas position `pos` (no confidence). Only the
  // token comes back to the host.
  virtual int32_t sample_next(float* logits, int64_t vocab, const MaskedRequest& draw,
                              const TopKTopP& filter, int64_t step, int64_t pos) = 0;
  // Commits the masked positions of the window that `rule` selects (ranked by confidence, ties:
  // lower position first): canvas[row0 + i] = tokens[i]. Appends the (canvas position, token)
  // pairs, by rank, to `committed` (host); only those come back to the host.
  virtual void commit(const int32_t* tokens, const double* confidence, int32_t* canvas,
                      int64_t row0, int64_t rows, int32_t mask_id, const CommitRule& rule,
                      std::vector<std::pair<int32_t, int32_t>>* committed) = 0;

  // ---- transformer kernels
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
  // x[r][j] += bias[j] for every row r of x[rows][dim] (a linear layer's bias).
  virtual void add_bias(float* x, int64_t rows, int64_t dim, const void* bias, DType bt) = 0;
  // Scaled dot-product attention of one sequence (see cpu/ops.h for the layout).
  virtual void attention(const float* q, const float* k, const float* v, float* out, int64_t nq,
                         int64_t nk, int64_t n_heads, int64_t n_kv_heads, int64_t hd,
                         int64_t q_pos0, bool causal) = 0;
  // out[i] = table[ids[i]] as float32 (ids in backend memory)
  virtual void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                         float* out) = 0;
};

// Backend memory owned for a scope.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend& be, size_t bytes) : be_(&be), p_(bytes ? be.alloc(bytes) : nullptr), n_(bytes) {}
  ~Buffer() {
    if (p_) be_->release(p_);
  }
  Buffer(Buffer&& o) noexcept : be_(o.be_), p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      if (p_) be_->release(p_);
      be_ = o.be_, p_ = o.p_, n_ = o.n_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  template <class T = float>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return n_; }

 private:
  Backend* be_ = nullptr;
  void* p_ = nullptr;
  size_t n_ = 0;
};

// The backend for `device` ("cpu" or "cuda"); throws EngineError(InvalidArgument) for a device
// this build or machine cannot provide, saying why.
std::unique_ptr<Backend> make_backend(const std::string& device, int threads);

}  // namespace difflm
