// Fused per-row sampling of the masked-diffusion loop: candidate token (argmax at temperature 0,
// Gumbel-max otherwise) and its softmax confidence, one pass over the logits, no probability
// matrix. CPU twin: sample_row() in native/engine/decode/masked.cpp, followed step by step:
//   1. NaN anywhere in the row is an error (reported by the host after the kernel);
//   2. logits_eos_inf: logits[eos] = -inf (the "candidate logits" c below);
//   3. x0 = first index of max c (T == 0), or the first index of the max over c != -inf of
//      c - T * log(-log(u)), u = uniform01(seed, Gumbel, step, pos, v) in float64;
//   4. confidence_eos_eot_inf: logits[eot] = -inf, and logits[eos] = -inf when T == 0 (the
//      "confidence logits" f below);
//   5. confidence = exp(f[x0] - max f) / sum over f != -inf of exp(f - max f), in float64 with
//      max f taken over float32 values; 0 if f[x0] or max f is -inf, or if not wanted.
// The in-place writes of steps 2 and 4 happen at the end of the block, after every read.
// Exactness: token choices equal the CPU's (the Gumbel score uses the same Philox draw and the
// _rn intrinsics, so no FMA contraction; CUDA's and the C library's float64 log may differ in
// the last ulp, which could only matter for two scores within ~1e-15 of each other). The sum is
// accumulated online (per-thread running max, rescaled), so confidence differs from the CPU's
// by float64 rounding only (~1e-15 relative).
#include <climits>
#include <string>

#include "common.cuh"
#include "rng.h"

namespace difflm {
namespace cuda {

namespace {

constexpr int kSampleThreads = 512;

struct SampleArgs {
  double temperature;
  uint64_t seed, step;
  int eos, eot;  // -1: none
  bool logits_eos_inf, confidence_eos_eot_inf;
};

// (value, index) argmax step: larger value wins, equal values keep the smaller index.
template <class V>
__device__ __forceinline__ void take_better(V& bv, int& bi, V ov, int oi) {
  if (ov > bv || (ov == bv && oi < bi)) {
    bv = ov;
    bi = oi;
  }
}

// Block-wide argmax over (value, index) pairs, same rule; the result goes to every thread.
template <class V>
__device__ void block_argmax(V& v, int& idx) {
  __shared__ V sv[32];
  __shared__ int si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    take_better(v, idx, __shfl_xor_sync(0xffffffffu, v, off),
                __shfl_xor_sync(0xffffffffu, idx, off));
  if (lane == 0) sv[warp] = v, si[warp] = idx;
  __syncthreads();
  V w = lane < nwarps ? sv[lane] : static_cast<V>(-INFINITY);
  int wi = lane < nwarps ? si[lane] : INT_MAX;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    take_better(w, wi, __shfl_xor_sync(0xffffffffu, w, off), __shfl_xor_sync(0xffffffffu, wi, off));
  v = w;
  idx = wi;
  __syncthreads();  // sv/si may be reused by a later call
}

// Per-thread state of the one pass over a row.
template <bool kGumbel, bool kConf>
struct RowState {
  float best_f = -INFINITY;   // argmax of c (temperature 0)
  double best_d = -INFINITY;  // best Gumbel score (temperature > 0)
  int best_i = INT_MAX;       // INT_MAX: nothing seen yet
  int nan_at = INT_MAX;       // first NaN index seen by this thread
  float m = -INFINITY;        // running max of f != -inf
  double sum = 0;             // sum of exp(f - m) over the f seen

  __device__ __forceinline__ void visit(float l, int v, const SampleArgs& a, uint64_t pos) {
    if (isnan(l)) nan_at = min(nan_at, v);
    const float c = (a.logits_eos_inf && v == a.eos) ? -INFINITY : l;
    if (!kGumbel) {
      take_better(best_f, best_i, c, v);
    } else if (c != -INFINITY) {
      const double u = uniform01(a.seed, RngStream::Gumbel, a.step, pos, static_cast<uint64_t>(v));
      // c - T * log(-log(u)) with separate roundings, as the CPU computes it.
      const double score =
          __dsub_rn(static_cast<double>(c), __dmul_rn(a.temperature, log(-log(u))));
      if (score > best_d || (score == best_d && v < best_i)) best_d = score, best_i = v;
    }
    if (kConf) {
      const bool drop = a.confidence_eos_eot_inf && (v == a.eot || (!kGumbel && v == a.eos));
      const float f = drop ? -INFINITY : c;
      if (f != -INFINITY) {
        if (f > m) {  // new running max: rescale what was summed so far
          sum = sum * exp(static_cast<double>(m) - static_cast<double>(f)) + 1.0;
          m = f;
        } else {
          sum += exp(static_cast<double>(f) - static_cast<double>(m));
        }
      }
    }
  }
};

// One block per row. The row is walked as a scalar head up to 16-byte alignment, float4s, and a
// scalar tail, so any vocab size and row offset works; ties never depend on which thread saw
// what, because every merge compares indices explicitly.
template <bool kGumbel, bool kConf>
__global__ void __launch_bounds__(kSampleThreads)
    sample_rows_kernel1(float* logits, int64_t vocab, const int64_t* __restrict__ positions,
                        SampleArgs a, int32_t* __restrict__ tokens, double* __restrict__ confidence,
                        unsigned long long* __restrict__ nan_flag) {
  const int64_t r = blockIdx.x;
  float* row = logits + r * vocab;
  const uint64_t pos = static_cast<uint64_t>(positions[r]);
  RowState<kGumbel, kConf> st;

  const int64_t to_align =
      static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(row) % 16) % 16 / 4);
  const int64_t head = to_align < vocab ? to_align : vocab;
  const int64_t n4 = (vocab - head) / 4;
  if (threadIdx.x < head) st.visit(row[threadIdx.x], static_cast<int>(threadIdx.x), a, pos);
  const float4* row4 = reinterpret_cast<const float4*>(row + head);
  // Two 16-byte loads issued before the (float64-heavy) work on them, to keep enough bytes in
  // flight per SM for the memory system.
  const int64_t stride = blockDim.x;
  for (int64_t i = threadIdx.x; i < n4; i += 2 * stride) {
    const bool second = i + stride < n4;
    const float4 q0 = row4[i];
    const float4 q1 = second ? row4[i + stride] : q0;
    const int v0 = static_cast<int>(head + 4 * i);
    st.visit(q0.x, v0, a, pos);
    st.visit(q0.y, v0 + 1, a, pos);
    st.visit(q0.z, v0 + 2, a, pos);
    st.visit(q0.w, v0 + 3, a, pos);
    if (second) {
      const int v1 = static_cast<int>(head + 4 * (i + stride));
      st.visit(q1.x, v1, a, pos);
      st.visit(q1.y, v1 + 1, a, pos);
      st.visit(q1.z, v1 + 2, a, pos);
      st.visit(q1.w, v1 + 3, a, pos);
    }
  }
  for (int64_t v = head + 4 * n4 + threadIdx.x; v < vocab; v += blockDim.x)
    st.visit(row[v], static_cast<int>(v), a, pos);

  if (st.nan_at != INT_MAX)
    atomicMin(nan_flag, static_cast<unsigned long long>(r * vocab + st.nan_at));

  int x0 = st.best_i;
  if (kGumbel) {
    double b = st.best_d;
    block_argmax(b, x0);
  } else {
    float b = st.best_f;
    block_argmax(b, x0);
  }
  if (x0 == INT_MAX) x0 = 0;  // no candidate (every logit -inf at T > 0): token 0, as the CPU

  double conf = 0;
  if (kConf) {
    const float M = block_reduce_max(st.m);
    const double part = st.m == -INFINITY ? 0.0 : st.sum * exp(static_cast<double>(st.m) - M);
    const double total = block_reduce_sum(part);
    const bool dropped = (a.logits_eos_inf && x0 == a.eos) ||
                         (a.confidence_eos_eot_inf && (x0 == a.eot || (!kGumbel && x0 == a.eos)));
    const float fx0 = dropped ? -INFINITY : row[x0];
    if (fx0 != -INFINITY && M != -INFINITY) conf = exp(static_cast<double>(fx0) - M) / total;
  }
  // Every thread has finished reading the row (the reductions above end with __syncthreads).
  __syncthreads();
  if (threadIdx.x == 0) {
    tokens[r] = x0;
    confidence[r] = conf;
    if (a.logits_eos_inf && a.eos >= 0) row[a.eos] = -INFINITY;
    if (a.confidence_eos_eot_inf) {
      if (a.eot >= 0) row[a.eot] = -INFINITY;
      if (!kGumbel && a.eos >= 0) row[a.eos] = -INFINITY;
    }
  }
}

template <bool kGumbel, bool kConf>
void sample_launch(float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                   const SampleArgs& a, int32_t* tokens, double* confidence,
                   unsigned long long* flag, cudaStream_t s) {
  sample_rows_kernel1<kGumbel, kConf><<<static_cast<unsigned>(rows), kSampleThreads, 0, s>>>(
      logits, vocab, positions, a, tokens, confidence, flag);
  CUDA_CHECK_LAUNCH("sample_rows_kernel1");
}

// A stream-ordered device allocation freed on every exit path (also when a check throws).
struct AsyncScratch {
  void* p = nullptr;
  cudaStream_t s;
  AsyncScratch(size_t bytes, cudaStream_t st) : s(st) { CUDA_CHECK(cudaMallocAsync(&p, bytes, s)); }
  ~AsyncScratch() {
    if (p) cudaFreeAsync(p, s);  // nothing to do about a failure here
  }
};

}  // namespace

void sample_rows(float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                 const SampleParams& p, int32_t* tokens, double* confidence, Stream s) {
  CUDA_REQUIRE(rows >= 0 && rows <= 0x7fffffff, "sample_rows: bad row count");
  CUDA_REQUIRE(vocab > 0 && vocab < INT_MAX, "sample_rows: bad vocab size");
  CUDA_REQUIRE(p.temperature >= 0, "sample_rows: negative temperature");
  CUDA_REQUIRE(p.eos_id < vocab && p.eot_id < vocab, "sample_rows: EOS/EOT outside the vocab");
  if (rows == 0) return;
  const cudaStream_t st = to_stream(s);
  SampleArgs a{p.temperature, p.seed,           static_cast<uint64_t>(p.step), p.eos_id,
               p.eot_id,      p.logits_eos_inf, p.confidence_eos_eot_inf};
  // NaN report: the smallest flat index r * vocab + v of a NaN, or all ones for none.
  AsyncScratch flag(sizeof(unsigned long long), st);
  auto* nan_flag = static_cast<unsigned long long*>(flag.p);
  CUDA_CHECK(cudaMemsetAsync(nan_flag, 0xff, sizeof(unsigned long long), st));
  const bool gumbel = p.temperature != 0;
  if (gumbel && p.want_confidence)
    sample_launch<true, true>(logits, rows, vocab, positions, a, tokens, confidence, nan_flag, st);
  else if (gumbel)
    sample_launch<true, false>(logits, rows, vocab, positions, a, tokens, confidence, nan_flag, st);
  else if (p.want_confidence)
    sample_launch<false, true>(logits, rows, vocab, positions, a, tokens, confidence, nan_flag, st);
  else
    sample_launch<false, false>(logits, rows, vocab, positions, a, tokens, confidence, nan_flag,
                                st);
  // The host needs the candidates right after this anyway, so waiting here costs nothing extra.
  unsigned long long nan_at = 0;
  CUDA_CHECK(cudaMemcpyAsync(&nan_at, nan_flag, sizeof nan_at, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (nan_at != ~0ull) {
    const int64_t r = static_cast<int64_t>(nan_at / static_cast<unsigned long long>(vocab));
    const int64_t v = static_cast<int64_t>(nan_at % static_cast<unsigned long long>(vocab));
    int64_t pos = 0;
    CUDA_CHECK(cudaMemcpyAsync(&pos, positions + r, sizeof pos, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    throw EngineError(ErrorCode::Internal, "logits at canvas position " + std::to_string(pos) +
                                               " contain NaN (token " + std::to_string(v) +
                                               "); the weights may be corrupt");
  }
}

}  // namespace cuda
}  // namespace difflm
