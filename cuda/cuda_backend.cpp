#include "cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <vector>

#include "blas.h"
#include "cuda_entry.h"
#include "decode/masked.h"
#include "decode/sampling.h"
#include "errors.h"
#include "kernels.h"
#include "safetensors.h"

namespace difflm {

namespace {

// Throws EngineError(Internal) naming the call; used for every runtime call in this file. The
// thread's last error is read first, as in cuda_fail (common.cuh).
void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw EngineError(ErrorCode::Internal,
                    std::string("CUDA: ") + what + " failed: " + cudaGetErrorString(err));
}

cudaStream_t as_stream(void* s) {
  return static_cast<cudaStream_t>(s);
}

enum ScratchSlot {
  kGemm = 0,
  kPositions = 1,
  kEligible = 2,
  kCommitted = 3,
  kCommittedTokens = 4,
  kCommitCount = 5,
  kNextToken = 6,
  kNextConfidence = 7
};

// The kernel's parameters for a request's draw at `step` (confidence as its remasking asks).
cuda::SampleParams sample_params(const MaskedRequest& req, int64_t step) {
  cuda::SampleParams p;
  p.temperature = req.temperature;
  p.seed = req.seed;
  p.step = step;
  p.eos_id = req.eos_id;
  p.eot_id = req.eot_id;
  p.logits_eos_inf = req.logits_eos_inf;
  p.confidence_eos_eot_inf = req.confidence_eos_eot_inf;
  p.want_confidence = req.remasking == Remasking::LowConfidence;
  return p;
}

}  // namespace

// Brackets one backend operation with two events on the stream when profiling is on.
class OpTimer {
 public:
  OpTimer(CudaBackend& be, const char* op) : be_(be), op_(op) {
    if (!be.prof_.on) return;
    if (be.prof_.pending.size() >= 4096) be.harvest();
    void* start = be.event();
    const cudaError_t err = cudaEventRecord(static_cast<cudaEvent_t>(start), as_stream(be.stream_));
    if (err != cudaSuccess) {
      be.prof_.pool.push_back(start);
      check(err, "cudaEventRecord");
    }
    start_ = start;
  }
  ~OpTimer() {
    if (!start_) return;
    // A destructor must not throw: a failure here only loses this sample (and at worst leaks
    // an event or two when memory runs out).
    void* stop = nullptr;
    try {
      auto& pending = be_.prof_.pending;  // grown geometrically (reserve(size + 1) is exact)
      if (pending.size() == pending.capacity()) pending.reserve(2 * pending.size() + 64);
      stop = be_.event();
    } catch (...) {
      return;
    }
    if (cudaEventRecord(static_cast<cudaEvent_t>(stop), as_stream(be_.stream_)) == cudaSuccess) {
      be_.prof_.pending.push_back({op_, start_, stop});  // cannot throw: reserved
      return;
    }
    try {
      be_.prof_.pool.push_back(stop);
      be_.prof_.pool.push_back(start_);
    } catch (...) {
    }
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  CudaBackend& be_;
  const char* op_;
  void* start_ = nullptr;
};

bool cuda_built() {
  return true;
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* why, bool with_free_memory) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (why)
      *why = err != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(err)
                                : "no CUDA device found";
    cudaGetLastError();  // clear the sticky error of a failed query
    return {};
  }
  int current = 0;
  const bool restore = cudaGetDevice(&current) == cudaSuccess;
  std::vector<CudaDeviceInfo> out;
  std::string left_out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    if (p.major * 10 + p.minor < 75) {  // no code in this build runs there
      left_out += std::string(left_out.empty() ? "" : "; ") + "device " + std::to_string(i) + " (" +
                  p.name + ") has compute capability " + std::to_string(p.major) + "." +
                  std::to_string(p.minor) + ", and difflm's CUDA 13 build needs 7.5 or newer";
      continue;
    }
    CudaDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.total_bytes = p.totalGlobalMem;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    size_t free = 0, total = 0;
    if (with_free_memory) {
      if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess)
        d.free_bytes = free;
      else
        cudaGetLastError();
    }
    out.push_back(d);
  }
  if (restore && with_free_memory) cudaSetDevice(current);  // the caller's device as it was
  if (why) *why = out.empty() ? "no usable CUDA device: " + left_out : left_out;
  return out;
}

std::unique_ptr<Backend> make_cuda_backend(int index) {
  std::string why;
  const auto devices = cuda_devices(&why, false);
  if (devices.empty()) throw EngineError(ErrorCode::InvalidArgument, "device \"cuda\": " + why);
  if (index < 0 || index >= static_cast<int>(devices.size()))
    throw EngineError(ErrorCode::InvalidArgument, "device \"cuda\": no device " +
                                                      std::to_string(index) + " (" +
                                                      std::to_string(devices.size()) + " found)");
  return std::make_unique<CudaBackend>(devices[index].index);  // the CUDA ordinal
}

CudaBackend::CudaBackend(int device) : device_(device) {
  activate();
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_ = s;
  // The kernels' small stream-ordered scratch (AsyncScratch: sampling's NaN flag, KNN's keys)
  // comes from the device's default pool, which by default gives its memory back at every
  // synchronization, so every step would map it again: let the pool keep up to 32 MiB. Only a
  // speed-up, so a failure is cleared and ignored.
  int pools = 0;
  cudaMemPool_t pool = nullptr;
  uint64_t keep = uint64_t(32) << 20;
  if (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device_) != cudaSuccess ||
      !pools || cudaDeviceGetDefaultMemPool(&pool, device_) != cudaSuccess ||
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess)
    cudaGetLastError();
}

CudaBackend::~CudaBackend() {
  // Destructors must not throw: errors here are ignored (the context is torn down anyway).
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(as_stream(stream_));
  blas_.reset();  // before its stream goes
  for (const auto& e : prof_.pending) {
    cudaEventDestroy(static_cast<cudaEvent_t>(e.start));
    cudaEventDestroy(static_cast<cudaEvent_t>(e.stop));
  }
  for (void* e : prof_.pool) cudaEventDestroy(static_cast<cudaEvent_t>(e));
  for (auto& kv : weights_) cudaFree(kv.second);
  for (auto& s : scratch_)
    if (s.p) cudaFree(s.p);
  cache_.clear([](void* p) { cudaFree(p); });
  if (stream_) cudaStreamDestroy(as_stream(stream_));
}

std::string CudaBackend::name() const {
  return "cuda:" + std::to_string(device_);
}

void CudaBackend::activate() const {
  check(cudaSetDevice(device_), "cudaSetDevice");
}

void* CudaBackend::alloc(size_t bytes) {
  const size_t size = BlockCache::round(bytes);
  BlockCache::Block b = cache_.take(size);
  if (!b.p) b = {device_alloc(size), size};
  try {
    live_[b.p] = b.bytes;
  } catch (...) {  // host out of memory: the block goes back to the cache, or to the device
    release_block(b.p, b.bytes);
    throw;
  }
  return b.p;
}

void* CudaBackend::device_alloc(size_t bytes) {
  activate();
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation && cache_.blocks() > 0) {
    // Give the cached blocks back to the device and try once more.
    cudaGetLastError();
    free_cached();
    err = cudaMalloc(&p, bytes);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw EngineError(ErrorCode::OutOfMemory, "out of GPU memory allocating " +
                                                  std::to_string(bytes) + " bytes (" +
                                                  std::to_string(free_bytes()) + " bytes free)");
  }
  check(err, "cudaMalloc");
  return p;
}

void CudaBackend::release(void* p) {
  // Kept for the next allocation, without waiting: every kernel runs on stream_, so work queued
  // after this point runs after the work that still reads the block.
  const auto it = live_.find(p);
  if (it == live_.end()) return;  // not ours (never happens: Buffer frees what alloc made)
  const size_t bytes = it->second;
  live_.erase(it);
  release_block(p, bytes);
}

void CudaBackend::release_block(void* p, size_t bytes) noexcept {
  try {
    cache_.put(p, bytes);
  } catch (...) {  // no host memory for the cache's node: free it now (errors have no taker)
    cudaSetDevice(device_);
    cudaStreamSynchronize(as_stream(stream_));
    cudaFree(p);
  }
}

void CudaBackend::free_cached() {
  if (cache_.blocks() == 0) return;
  activate();
  check(cudaStreamSynchronize(as_stream(stream_)), "cudaStreamSynchronize");
  cache_.clear([](void* p) { cudaFree(p); });
}

void CudaBackend::trim() noexcept {
  // The scratch areas (the GEMM's rounded A alone is M x K x 2 bytes) go back as well: every
  // call asks scratch() again, and no kernel is in flight between requests.
  for (auto& s : scratch_) {
    if (s.p) release(s.p);
    s = Scratch{};
  }
  if (cache_.blocks() == 0) return;
  // After an error the sync may fail; the blocks are freed all the same.
  cudaSetDevice(device_);
  cudaStreamSynchronize(as_stream(stream_));
  cache_.clear([](void* p) { cudaFree(p); });
  cudaGetLastError();
}

void CudaBackend::to_backend(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  activate();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(stream_)),
        "cudaMemcpyAsync (to device)");
  // The host buffer may change as soon as we return.
  check(cudaStreamSynchronize(as_stream(stream_)), "cudaStreamSynchronize");
}

void CudaBackend::to_host(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  activate();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(stream_)),
        "cudaMemcpyAsync (to host)");
  check(cudaStreamSynchronize(as_stream(stream_)), "cudaStreamSynchronize");
}

const void* CudaBackend::weight(const TensorView& t) {
  auto it = weights_.find(t.data);
  if (it != weights_.end()) return it->second;
  void* d = device_alloc(std::max<size_t>(t.bytes, 1));
  try {
    to_backend(d, t.data, t.bytes);
  } catch (...) {
    cudaFree(d);
    throw;
  }
  weights_.emplace(t.data, d);
  return d;
}

size_t CudaBackend::free_bytes() const {
  activate();
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
  return free + cache_.bytes();  // cached blocks are handed back when an allocation needs them
}

std::string CudaBackend::broken() {
  // A sticky error poisons the context: every later call fails the same way. Non-sticky ones
  // (a bad launch configuration, an out-of-memory) are cleared by reading them.
  if (cudaSetDevice(device_) != cudaSuccess) return "cannot select the device";
  const cudaError_t err = cudaDeviceSynchronize();
  if (err == cudaSuccess) return {};
  cudaGetLastError();
  if (cudaDeviceSynchronize() == cudaSuccess) return {};
  return cudaGetErrorString(err);
}

void CudaBackend::set_profiling(bool on) {
  prof_.on = on;
}

void* CudaBackend::event() {
  if (!prof_.pool.empty()) {
    void* e = prof_.pool.back();
    prof_.pool.pop_back();
    return e;
  }
  activate();
  cudaEvent_t e = nullptr;
  check(cudaEventCreate(&e), "cudaEventCreate");
  return e;
}

void CudaBackend::harvest() {
  // Events complete in stream order: take the finished prefix of the list.
  size_t done = 0;
  for (; done < prof_.pending.size(); ++done) {
    const auto& p = prof_.pending[done];
    const cudaError_t q = cudaEventQuery(static_cast<cudaEvent_t>(p.stop));
    if (q != cudaSuccess) {
      // "Not ready" is recorded as the thread's last error: clear it, or the next launch check
      // (cudaGetLastError) would report it.
      if (q == cudaErrorNotReady) cudaGetLastError();
      break;
    }
    float ms = 0;
    if (cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(p.start),
                             static_cast<cudaEvent_t>(p.stop)) == cudaSuccess) {
      OpTime& t = prof_.totals[p.op];
      t.op = p.op;
      t.calls += 1;
      t.ms += ms;
    }
    prof_.pool.push_back(p.start);
    prof_.pool.push_back(p.stop);
  }
  prof_.pending.erase(prof_.pending.begin(), prof_.pending.begin() + static_cast<long>(done));
}

std::vector<CudaBackend::OpTime> CudaBackend::take_profile() {
  activate();
  check(cudaStreamSynchronize(as_stream(stream_)), "cudaStreamSynchronize");
  harvest();
  std::vector<OpTime> out;
  for (auto& kv : prof_.totals) out.push_back(kv.second);
  prof_.totals.clear();
  std::sort(out.begin(), out.end(), [](const OpTime& a, const OpTime& b) { return a.ms > b.ms; });
  return out;
}

void* CudaBackend::scratch(int slot, size_t bytes) {
  Scratch& s = scratch_[slot];
  if (s.bytes < bytes) {
    if (s.p) release(s.p);
    s.p = nullptr;
    s.bytes = 0;
    s.p = alloc(bytes);
    s.bytes = bytes;
  }
  return s.p;
}

cuda::Blas* CudaBackend::blas() {
  if (!use_blas_) return nullptr;
  if (!blas_tried_) {
    blas_tried_ = true;
    int major = 0;
    check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_),
          "cudaDeviceGetAttribute");
    if (major < 8)  // gemm() takes cuBLAS from sm_80 on
      blas_why_ = "cuBLAS is used from compute capability 8.0 on";
    else
      blas_ = cuda::Blas::open(stream_, &blas_why_);
  }
  return blas_.get();
}

std::string CudaBackend::gemm_library() {
  activate();
  if (!use_blas_) return "own kernels (cuBLAS switched off)";
  return blas() ? "cuBLAS (" + blas_->library() + ")" : "own kernels (" + blas_why_ + ")";
}

void CudaBackend::gemm(const float* A, int64_t M, const WeightMatrix& W, float* C) {
  activate();
  const bool w16 = W.dtype != DType::F32;
  cuda::Blas* b = w16 ? blas() : nullptr;
  OpTimer timer(*this, "gemm");
  auto* tmp =
      w16 ? static_cast<uint16_t*>(scratch(kGemm, static_cast<size_t>(M * W.cols) * 2)) : nullptr;
  cuda::gemm(A, M, W.cols, W.data, W.dtype, W.rows, C, tmp, stream_, b);
}

void CudaBackend::rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt,
                          float eps, float* out) {
  activate();
  OpTimer timer(*this, "rmsnorm");
  cuda::rmsnorm(x, rows, dim, w, wt, eps, out, stream_);
}

void CudaBackend::rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                       const RopeTable& t) {
  activate();
  OpTimer timer(*this, "rope");
  cuda::rope(x, rows, heads, head_dim, pos0, t.cos, t.sin, stream_);
}

void CudaBackend::swiglu(const float* gate, const float* up, float* out, int64_t n) {
  activate();
  OpTimer timer(*this, "swiglu");
  cuda::swiglu(gate, up, out, n, stream_);
}

void CudaBackend::add(float* x, const float* y, int64_t n) {
  activate();
  OpTimer timer(*this, "add");
  cuda::add(x, y, n, stream_);
}

void CudaBackend::add_bias(float* x, int64_t rows, int64_t dim, const void* bias, DType bt) {
  activate();
  OpTimer timer(*this, "add_bias");
  cuda::add_bias(x, rows, dim, bias, bt, stream_);
}

void CudaBackend::attention(const float* q, const float* k, const float* v, float* out, int64_t nq,
                            int64_t nk, int64_t n_heads, int64_t n_kv_heads, int64_t hd,
                            int64_t q_pos0, bool causal) {
  activate();
  OpTimer timer(*this, "attention");
  cuda::attention(q, k, v, out, nq, nk, n_heads, n_kv_heads, hd, q_pos0, causal, stream_);
}

void CudaBackend::embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                            float* out) {
  activate();
  OpTimer timer(*this, "embedding");
  cuda::embedding(table, dt, dim, ids, n, out, stream_);
}

void CudaBackend::cfg_mix(float* c, const float* u, int64_t n, float scale) {
  activate();
  OpTimer timer(*this, "cfg_mix");
  cuda::cfg_mix(c, u, n, scale, stream_);
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  activate();
  OpTimer timer(*this, "copy");
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(stream_)),
        "cudaMemcpyAsync (device to device)");
}

void CudaBackend::sample_candidates(float* logits, int64_t rows, int64_t vocab, int64_t row0,
                                    const int32_t* canvas, const MaskedRequest& req, int64_t step,
                                    int32_t* tokens, double* confidence) {
  activate();
  // Includes the wait for the candidates (the kernels synchronize to check for NaN).
  OpTimer timer(*this, "sample");
  auto* positions = static_cast<int64_t*>(scratch(kPositions, rows * sizeof(int64_t)));
  cuda::iota64(positions, rows, row0, stream_);
  if (req.sampler == Sampler::Dream) {
    cuda::DreamParams p;
    p.temperature = req.temperature;
    p.seed = req.seed;
    p.step = step;
    p.top_k = req.filter.top_k;
    p.top_p = req.filter.top_p;
    p.alg = static_cast<int>(req.alg);
    p.alg_temp = req.alg_temp;
    p.canvas = canvas;
    p.mask_id = req.mask_id;
    cuda::dream_rows(logits, rows, vocab, positions, p, tokens, confidence, stream_);
    return;
  }
  cuda::SampleParams p = sample_params(req, step);
  p.canvas = canvas;  // committed rows are skipped, as on the CPU
  p.mask_id = req.mask_id;
  cuda::sample_rows(logits, rows, vocab, positions, p, tokens, confidence, stream_);
  if (req.remasking == Remasking::Random)
    cuda::remask_confidence(confidence, rows, row0, req.seed, step, stream_);
}

int32_t CudaBackend::sample_next(float* logits, int64_t vocab, const MaskedRequest& draw,
                                 const TopKTopP& filter, int64_t step, int64_t pos) {
  activate();
  int32_t token = 0;
  {
    // Includes the wait for the token (sample_rows synchronizes to check for NaN).
    OpTimer timer(*this, "sample");
    auto* position = static_cast<int64_t*>(scratch(kPositions, sizeof(int64_t)));
    auto* d_token = static_cast<int32_t*>(scratch(kNextToken, sizeof(int32_t)));
    auto* d_conf = static_cast<double*>(scratch(kNextConfidence, sizeof(double)));
    cuda::iota64(position, 1, pos, stream_);
    cuda::SampleParams p = sample_params(draw, step);
    p.want_confidence = false;
    p.top_k = filter.top_k;
    p.top_p = filter.top_p;
    cuda::sample_rows(logits, 1, vocab, position, p, d_token, d_conf, stream_);
    to_host(&token, d_token, sizeof token);
  }
  return token;
}

void CudaBackend::commit(const int32_t* tokens, const double* confidence, int32_t* canvas,
                         int64_t row0, int64_t rows, int32_t mask_id, const CommitRule& rule,
                         std::vector<std::pair<int32_t, int32_t>>* committed) {
  activate();
  auto* eligible = static_cast<uint8_t*>(scratch(kEligible, rows));
  {
    OpTimer timer(*this, "select");
    cuda::mask_eligible(canvas + row0, rows, mask_id, eligible, stream_);
  }
  if (rule.kind == CommitRule::Kind::Factor || rule.cap >= 0) {
    // The rank-dependent cut and the capped threshold have no kernel: the window's candidates
    // (at most a block's or a generation's worth of rows) come to the host, and only the chosen
    // tokens go back.
    std::vector<double> h_conf(static_cast<size_t>(rows));
    std::vector<int32_t> h_tok(static_cast<size_t>(rows));
    std::vector<uint8_t> h_elig(static_cast<size_t>(rows));
    to_host(h_conf.data(), confidence, rows * sizeof(double));
    to_host(h_tok.data(), tokens, rows * sizeof(int32_t));
    to_host(h_elig.data(), eligible, rows);
    for (const int64_t i : select_commits(h_conf.data(), h_elig.data(), rows, rule)) {
      to_backend(canvas + row0 + i, &h_tok[i], sizeof(int32_t));
      committed->emplace_back(static_cast<int32_t>(row0 + i), h_tok[i]);
    }
    return;
  }
  const int64_t room = rule.kind == CommitRule::Kind::TopK ? std::min(rule.k, rows) : rows;
  if (room <= 0) return;
  auto* idx = static_cast<int32_t*>(scratch(kCommitted, room * sizeof(int32_t)));
  auto* tok = static_cast<int32_t*>(scratch(kCommittedTokens, room * sizeof(int32_t)));
  int64_t count = room;
  if (rule.kind == CommitRule::Kind::TopK) {
    OpTimer timer(*this, "select");
    cuda::select_commit(confidence, tokens, eligible, rows, room, canvas + row0, idx, stream_);
  } else {
    auto* d_count = static_cast<int32_t*>(scratch(kCommitCount, sizeof(int32_t)));
    {
      OpTimer timer(*this, "select");
      cuda::select_threshold(confidence, tokens, eligible, rows, rule.threshold, canvas + row0, idx,
                             d_count, stream_);
    }
    int32_t h_count = 0;
    to_host(&h_count, d_count, sizeof(int32_t));
    count = h_count;
  }
  if (count <= 0) return;
  {
    OpTimer timer(*this, "select");
    cuda::gather_tokens(canvas + row0, idx, count, tok, stream_);
  }
  // Only the committed positions and tokens come back.
  std::vector<int32_t> h_idx(static_cast<size_t>(count)), h_tok(static_cast<size_t>(count));
  to_host(h_idx.data(), idx, count * sizeof(int32_t));
  to_host(h_tok.data(), tok, count * sizeof(int32_t));
  for (int64_t j = 0; j < count; ++j)
    if (h_idx[j] >= 0) committed->emplace_back(static_cast<int32_t>(row0 + h_idx[j]), h_tok[j]);
}

}  // namespace difflm
