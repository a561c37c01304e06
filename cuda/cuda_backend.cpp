#include "cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <vector>

#include "cuda_entry.h"
#include "decode/masked.h"
#include "errors.h"
#include "kernels.h"
#include "safetensors.h"

namespace difflm {

namespace {

// Throws EngineError(Internal) naming the call; used for every runtime call in this file.
void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
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
  kCommitCount = 5
};

}  // namespace

bool cuda_built() {
  return true;
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (why)
      *why = err != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(err)
                                : "no CUDA device found";
    cudaGetLastError();  // clear the sticky error of a failed query
    return {};
  }
  std::vector<CudaDeviceInfo> out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.total_bytes = p.totalGlobalMem;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    size_t free = 0, total = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess)
      d.free_bytes = free;
    out.push_back(d);
  }
  return out;
}

std::unique_ptr<Backend> make_cuda_backend(int index) {
  std::string why;
  const auto devices = cuda_devices(&why);
  if (devices.empty()) throw EngineError(ErrorCode::InvalidArgument, "device \"cuda\": " + why);
  if (index < 0 || index >= static_cast<int>(devices.size()))
    throw EngineError(ErrorCode::InvalidArgument, "device \"cuda\": no device " +
                                                      std::to_string(index) + " (" +
                                                      std::to_string(devices.size()) + " found)");
  const auto& d = devices[index];
  if (d.cc_major * 10 + d.cc_minor < 75)
    throw EngineError(ErrorCode::InvalidArgument,
                      "device \"cuda\": " + d.name + " has compute capability " +
                          std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) +
                          "; difflm's CUDA 13 build needs 7.5 or newer");
  return std::make_unique<CudaBackend>(index);
}

CudaBackend::CudaBackend(int device) : device_(device) {
  activate();
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_ = s;
}

CudaBackend::~CudaBackend() {
  // Destructors must not throw: errors here are ignored (the context is torn down anyway).
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(as_stream(stream_));
  for (auto& kv : weights_) cudaFree(kv.second);
  for (auto& s : scratch_)
    if (s.p) cudaFree(s.p);
  if (stream_) cudaStreamDestroy(as_stream(stream_));
}

std::string CudaBackend::name() const {
  return "cuda:" + std::to_string(device_);
}

void CudaBackend::activate() const {
  check(cudaSetDevice(device_), "cudaSetDevice");
}

void* CudaBackend::alloc(size_t bytes) {
  activate();
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, std::max<size_t>(bytes, 1));
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
  activate();
  // Work queued on the stream may still read the buffer: wait for it before freeing.
  check(cudaStreamSynchronize(as_stream(stream_)), "cudaStreamSynchronize");
  check(cudaFree(p), "cudaFree");
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
  void* d = alloc(t.bytes);
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
  return free;
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

void CudaBackend::gemm(const float* A, int64_t M, const WeightMatrix& W, float* C) {
  activate();
  auto* tmp = static_cast<uint16_t*>(scratch(kGemm, static_cast<size_t>(M * W.cols) * 2));
  cuda::gemm(A, M, W.cols, W.data, W.dtype, W.rows, C, tmp, stream_);
}

void CudaBackend::rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt,
                          float eps, float* out) {
  activate();
  cuda::rmsnorm(x, rows, dim, w, wt, eps, out, stream_);
}

void CudaBackend::rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                       const RopeTable& t) {
  activate();
  cuda::rope(x, rows, heads, head_dim, pos0, t.cos, t.sin, stream_);
}

void CudaBackend::swiglu(const float* gate, const float* up, float* out, int64_t n) {
  activate();
  cuda::swiglu(gate, up, out, n, stream_);
}

void CudaBackend::add(float* x, const float* y, int64_t n) {
  activate();
  cuda::add(x, y, n, stream_);
}

void CudaBackend::attention(const float* q, const float* k, const float* v, float* out, int64_t nq,
                            int64_t nk, int64_t n_heads, int64_t n_kv_heads, int64_t hd,
                            int64_t q_pos0, bool causal) {
  activate();
  cuda::attention(q, k, v, out, nq, nk, n_heads, n_kv_heads, hd, q_pos0, causal, stream_);
}

void CudaBackend::embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                            float* out) {
  activate();
  cuda::embedding(table, dt, dim, ids, n, out, stream_);
}

void CudaBackend::cfg_mix(float* c, const float* u, int64_t n, float scale) {
  activate();
  cuda::cfg_mix(c, u, n, scale, stream_);
}

void CudaBackend::copy(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  activate();
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(stream_)),
        "cudaMemcpyAsync (device to device)");
}

void CudaBackend::sample_candidates(float* logits, int64_t rows, int64_t vocab, int64_t row0,
                                    const int32_t* canvas, const MaskedRequest& req, int64_t step,
                                    int32_t* tokens, double* confidence) {
  (void)canvas;  // every row of the window is sampled: committed rows cost little on a GPU
  activate();
  auto* positions = static_cast<int64_t*>(scratch(kPositions, rows * sizeof(int64_t)));
  cuda::iota64(positions, rows, row0, stream_);
  cuda::SampleParams p;
  p.temperature = req.temperature;
  p.seed = req.seed;
  p.step = step;
  p.eos_id = req.eos_id;
  p.eot_id = req.eot_id;
  p.logits_eos_inf = req.logits_eos_inf;
  p.confidence_eos_eot_inf = req.confidence_eos_eot_inf;
  p.want_confidence = req.remasking == Remasking::LowConfidence;
  cuda::sample_rows(logits, rows, vocab, positions, p, tokens, confidence, stream_);
  if (req.remasking == Remasking::Random)
    cuda::remask_confidence(confidence, rows, row0, req.seed, step, stream_);
}

void CudaBackend::commit(const int32_t* tokens, const double* confidence, int32_t* canvas,
                         int64_t row0, int64_t rows, int32_t mask_id, const CommitRule& rule,
                         std::vector<std::pair<int32_t, int32_t>>* committed) {
  activate();
  auto* eligible = static_cast<uint8_t*>(scratch(kEligible, rows));
  cuda::mask_eligible(canvas + row0, rows, mask_id, eligible, stream_);
  if (rule.kind == CommitRule::Kind::Factor) {
    // The rank-dependent cut has no kernel: the window's candidates (a block's worth of rows)
    // come to the host, and only the chosen tokens go back.
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
    cuda::select_commit(confidence, tokens, eligible, rows, room, canvas + row0, idx, stream_);
  } else {
    auto* d_count = static_cast<int32_t*>(scratch(kCommitCount, sizeof(int32_t)));
    cuda::select_threshold(confidence, tokens, eligible, rows, rule.threshold, canvas + row0, idx,
                           d_count, stream_);
    int32_t h_count = 0;
    to_host(&h_count, d_count, sizeof(int32_t));
    count = h_count;
  }
  if (count <= 0) return;
  cuda::gather_tokens(canvas + row0, idx, count, tok, stream_);
  // Only the committed positions and tokens come back.
  std::vector<int32_t> h_idx(static_cast<size_t>(count)), h_tok(static_cast<size_t>(count));
  to_host(h_idx.data(), idx, count * sizeof(int32_t));
  to_host(h_tok.data(), tok, count * sizeof(int32_t));
  for (int64_t j = 0; j < count; ++j)
    if (h_idx[j] >= 0) committed->emplace_back(static_cast<int32_t>(row0 + h_idx[j]), h_tok[j]);
}

}  // namespace difflm
