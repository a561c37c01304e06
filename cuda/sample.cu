// Fused per-row sampling of the masked-diffusion loop: candidate token (argmax at temperature 0,
// Gumbel-max otherwise) and its softmax confidence, one pass over the logits, no probability
// matrix. CPU twin: sample_row() in native/engine/decode/masked.cpp, followed step by step:
//   1. NaN or +inf anywhere in the row is an error (reported by the host after the kernel);
//   2. logits_eos_inf: logits[eos] = -inf (the "candidate logits" c below);
//   3. x0 = first index of max c (T == 0), or the first index of the max over c != -inf of
//      c - T * log(-log(u)), u = uniform01(seed, Gumbel, step, pos, v) in float64;
//   4. confidence_eos_eot_inf: logits[eot] = -inf, and logits[eos] = -inf when T == 0 (the
//      "confidence logits" f below);
//   5. confidence = the softmax probability of x0 over the f != -inf as decode/confidence.h
//      defines it (segments of kConfidenceSegment tokens, float32 terms from the shared
//      exp_nonpositive, float64 sums and fold); 0 if f[x0] or max f is -inf, or if not wanted.
// The in-place writes of steps 2 and 4 happen at the end of the block, after every read.
// Exactness: token choices equal the CPU's (the Gumbel score uses the same Philox draw and the
// _rn intrinsics, so no FMA contraction; CUDA's and the C library's float64 log may differ in
// the last ulp, which could only matter for two scores within ~1e-15 of each other). The
// confidence's float32 terms are the CPU's bit for bit; only the order of the float64 additions
// and the last ulp of CUDA's vs the C library's float64 exp differ (~1e-16 relative).
//
// Top-k / top-p (temperature > 0 only; CPU twin: sample_row_filtered() in decode/sampling.h):
// before the pass above, the block finds one threshold thr per row and the Gumbel candidate is
// drawn over the c >= thr only (confidence and in-place writes unchanged). thr is found without
// any per-token scratch, by radix selects over order-preserving 32-bit keys of c (-0 folded into
// +0), four 8-bit digits from the top, each one pass over the row building a 256-bin histogram
// in shared memory:
//   - top-k: the k-th largest key (histogram of counts); t_k = its value;
//   - top-p: the largest key K whose weight sum over {c >= K, c >= t_k} reaches the target
//     (histogram of the integer weights top_p_weight((c - max) / T), which the CPU computes
//     bit for bit; the first pass also yields the total). Integer sums do not depend on order,
//     so the cutoff is the CPU's exactly, ties included.
// thr = the top-p cutoff when top-p is on, else t_k. That is 1 + 4 + 4 extra passes over the row
// (mostly from L2); the unfiltered kernels are unchanged.
#include <climits>
#include <string>

#include "common.cuh"
#include "decode/confidence.h"
#include "decode/masked.h"  // bad_logit_message
#include "decode/sampling.h"
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
  int top_k;              // 0 < top_k < vocab, or 0: off
  double top_p;           // < 1: on
  const int32_t* canvas;  // null, or rows at positions holding another token than mask_id
  int32_t mask_id;        // are skipped
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

// ---------------------------------------------------------------------------------------------
// Top-k / top-p threshold (kFilter kernels only)
// ---------------------------------------------------------------------------------------------

constexpr int kBins = 256;

// Order-preserving key of a non-NaN float: a < b iff key(a) < key(b); -0 and +0 share a key.
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t b = __float_as_uint(f == 0.f ? 0.f : f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

struct SelectShared {
  unsigned long long hist[kBins];
  unsigned long long above;  // weight of the tokens whose key is above the chosen prefix
  uint32_t digit;
  int empty;
};

// Block-wide radix select: the largest key K such that the total weight of the tokens with
// key >= K reaches the target, where kw(v, key) gives token v's key and returns a functor that
// yields its weight (0: not counted; only evaluated for the tokens under the current prefix).
// kUnit: every counted weight is 1 (counts; warp-aggregated atomics). With p > 0 the target is
// top_p_target(p, total weight) instead of `target`; a zero total returns false (no cutoff). Needs
// target <= total weight otherwise. Every thread of the block must call it; the result goes to
// every thread. Exact: the sums are integers.
template <bool kUnit, class KeyWeight>
__device__ bool radix_select(int vocab, const KeyWeight& kw, unsigned long long target, double p,
                             SelectShared& sh, uint32_t& result) {
  const int lane = threadIdx.x & 31;
  if (threadIdx.x == 0) sh.empty = 0;
  uint32_t prefix = 0, mask = 0;
  unsigned long long above = 0, tgt = target;  // used by warp 0
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < kBins; b += blockDim.x) sh.hist[b] = 0;
    __syncthreads();
    // Uniform trip count, so that every lane of a warp reaches __match_any_sync together.
    for (int base = 0; base < vocab; base += blockDim.x) {
      const int v = base + threadIdx.x;
      uint32_t key = 0;
      unsigned long long w = 0;
      if (v < vocab) {
        const auto weight = kw(v, key);
        if ((key & mask) == prefix) w = weight();
      }
      const uint32_t bin = (key >> shift) & (kBins - 1);
      if (kUnit) {
        const unsigned peers = __match_any_sync(0xffffffffu, w != 0 ? bin : kBins);
        if (w != 0 && lane == __ffs(peers) - 1)
          atomicAdd(&sh.hist[bin], static_cast<unsigned long long>(__popc(peers)));
      } else if (w != 0) {
        atomicAdd(&sh.hist[bin], w);
      }
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l owns bins [8l, 8l + 8); suffix = the weight of bins [8l, 256).
      unsigned long long own = 0;
#pragma unroll
      for (int j = 0; j < kBins / 32; ++j) own += sh.hist[(kBins / 32) * lane + j];
      unsigned long long suffix = own;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const unsigned long long t = __shfl_down_sync(0xffffffffu, suffix, off);
        if (lane + off < 32) suffix += t;
      }
      if (shift == 24 && p > 0) {
        const unsigned long long total = __shfl_sync(0xffffffffu, suffix, 0);
        tgt = total == 0 ? 0 : top_p_target(p, total);
      }
      if (tgt == 0) {  // the same on every lane
        if (lane == 0) sh.empty = 1;
      } else {
        // The digit is in the highest lane whose bins from 8l up, plus what lies above the
        // prefix, still reach the target (lane 0 always does: the invariant of the select).
        const unsigned ballot = __ballot_sync(0xffffffffu, above + suffix >= tgt);
        const int l = ballot ? 31 - __clz(ballot) : 0;
        if (lane == l) {
          unsigned long long run = above + suffix - own;
          int digit = (kBins / 32) * l;
          for (int b = (kBins / 32) * l + (kBins / 32) - 1; b >= (kBins / 32) * l; --b) {
            if (run + sh.hist[b] >= tgt) {
              digit = b;
              break;
            }
            run += sh.hist[b];
          }
          sh.digit = static_cast<uint32_t>(digit);
          sh.above = run;
        }
      }
    }
    __syncthreads();
    if (sh.empty) return false;
    prefix |= sh.digit << shift;
    mask |= static_cast<uint32_t>(kBins - 1) << shift;
    above = sh.above;
  }
  result = prefix;
  return true;
}

// The row's filter threshold: the Gumbel draw considers only c >= thr (see the file comment).
__device__ float filter_threshold(const float* row, int vocab, const SampleArgs& a) {
  __shared__ SelectShared sh;
  const auto cand = [&](int v) {
    const float l = row[v];
    return (a.logits_eos_inf && v == a.eos) ? -INFINITY : l;
  };
  float tk = -INFINITY;
  uint32_t key = 0;
  if (a.top_k > 0) {
    radix_select<true>(
        vocab,
        [&](int v, uint32_t& k) {
          k = order_key(cand(v));
          return [] { return 1ull; };
        },
        static_cast<unsigned long long>(a.top_k), 0.0, sh, key);
    tk = key_value(key);
  }
  if (!(a.top_p < 1.0)) return tk;
  float m = -INFINITY;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) {
    const float c = cand(v);
    m = c > m ? c : m;
  }
  m = block_reduce_max(m);
  if (m == -INFINITY) return tk;
  const double md = m, T = a.temperature;
  const bool found = radix_select<false>(
      vocab,
      [&](int v, uint32_t& k) {
        const float c = cand(v);
        k = order_key(c);
        return [=] {
          return c >= tk ? static_cast<unsigned long long>(
                               top_p_weight((static_cast<double>(c) - md) / T))
                         : 0ull;
        };
      },
      0, a.top_p, sh, key);
  return found ? key_value(key) : tk;
}

// A segment of the row (decode/confidence.h) is held in registers, kPerThread tokens a thread.
constexpr int kPerThread = static_cast<int>(kConfidenceSegment) / kSampleThreads;
static_assert(kPerThread * kSampleThreads == kConfidenceSegment, "segment = threads x kPerThread");

// c - T * log(-log(u)) with separate roundings, as the CPU computes it, or -inf when the draw's
// noise bound (rng.h: gumbel_noise_bound) shows that the score stays below `floor` (exact, as on
// the CPU: the bounds hold for every draw; `prune` is off for T < 1e-300). Out of line, so that
// the unrolled per-segment loop stays small (the Philox draw and two float64 logs dwarf a call).
__device__ __noinline__ double gumbel_score(float c, int v, double temperature, bool prune,
                                            double floor, uint64_t seed, uint64_t step,
                                            uint64_t pos) {
  const double u = uniform01(seed, RngStream::Gumbel, step, pos, static_cast<uint64_t>(v));
  const double cd = static_cast<double>(c);
  if (prune && __dadd_rn(cd, __dmul_rn(temperature, gumbel_noise_bound(u))) < floor)
    return -INFINITY;
  return __dsub_rn(cd, __dmul_rn(temperature, log(-log(u))));
}

// block_reduce_max out of line: inlined into the segment loop it made ptxas spill.
__device__ __noinline__ double block_best(double v) {
  return block_reduce_max(v);
}

// One block per row, walked a segment at a time: all of a segment's loads are issued first
// (kPerThread per thread, many bytes in flight), then the candidate and the segment's max from
// registers, then its sum of exponentials from the same registers, so the row is read from
// memory once. Ties never depend on which thread saw what: every merge compares indices.
template <bool kGumbel, bool kConf, bool kFilter>
__global__ void __launch_bounds__(kSampleThreads, 2)
    sample_rows_kernel(float* logits, int64_t vocab, const int64_t* __restrict__ positions,
                       SampleArgs a, int32_t* __restrict__ tokens, double* __restrict__ confidence,
                       unsigned long long* __restrict__ nan_flag) {
  const int64_t r = blockIdx.x;
  float* row = logits + r * vocab;
  const uint64_t pos = static_cast<uint64_t>(positions[r]);
  if (a.canvas && a.canvas[pos] != a.mask_id) return;  // committed: the whole block leaves
  const int V = static_cast<int>(vocab);  // < INT_MAX - kConfidenceSegment (host check)
  float thr = -INFINITY;
  if (kFilter) thr = filter_threshold(row, V, a);

  float best_f = -INFINITY;   // argmax of c (temperature 0)
  double best_d = -INFINITY;  // best Gumbel score (temperature > 0)
  int best_i = INT_MAX;       // INT_MAX: nothing seen yet
  int nan_at = INT_MAX;       // first NaN or +inf index seen by this thread
  float M = -INFINITY;        // the folded segments (confidence.h), alike in every thread
  double S = 0;
  // A token whose c + reach is below the best score so far cannot win (rng.h: kGumbelNoiseMax).
  // The best so far is this thread's, or the block's after each segment (see below); both are
  // at most the row's best, and a token skipped is strictly below it, so skipping is exact.
  const bool prune = a.temperature >= 1e-300;
  const double reach = prune ? kGumbelNoiseMax * a.temperature : INFINITY;
  for (int s0 = 0; s0 < V; s0 += static_cast<int>(kConfidenceSegment)) {
    if (kGumbel && prune && s0 > 0) {
      // The block's best so far prunes this segment. A thread that does not hold it takes its
      // score without an index (INT_MAX loses every tie); this segment's tokens have higher
      // indices than every earlier one, so one of them with an equal score loses, as on the CPU.
      const double b = block_best(best_d);
      if (b > best_d) best_d = b, best_i = INT_MAX;
    }
    float l[kPerThread];
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int v = s0 + static_cast<int>(threadIdx.x) + j * kSampleThreads;
      l[j] = v < V ? row[v] : -INFINITY;
    }
    float seg_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int v = s0 + static_cast<int>(threadIdx.x) + j * kSampleThreads;
      if (v >= V) continue;  // l[j] is -inf: no term
      const float x = l[j];
      if (isnan(x) || x == INFINITY) nan_at = min(nan_at, v);
      const float c = (a.logits_eos_inf && v == a.eos) ? -INFINITY : x;
      if (!kGumbel) {
        take_better(best_f, best_i, c, v);
      } else if (c != -INFINITY && (!kFilter || c >= thr) && !(c + reach < best_d)) {
        // (Skipped: tokens that cannot reach the best so far, as the CPU skips.)
        const double score = gumbel_score(c, v, a.temperature, prune, best_d, a.seed, a.step, pos);
        // Strictly greater, as the CPU: a thread visits its tokens in increasing order, so
        // the first of equal scores stays, and an all -inf row keeps no candidate (token 0).
        if (score > best_d) best_d = score, best_i = v;
      }
      if (kConf) {
        const bool drop = a.confidence_eos_eot_inf && (v == a.eot || (!kGumbel && v == a.eos));
        const float f = drop ? -INFINITY : c;
        seg_max = fmaxf(seg_max, f);
        l[j] = f;
      }
    }
    if (kConf) {
      const float m = block_reduce_max(seg_max);
      double part = 0;
      if (m != -INFINITY) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j)
          part += static_cast<double>(exp_nonpositive(__fsub_rn(l[j], m)));
      }
      fold_confidence_segment(M, S, m, block_reduce_sum(part));
    }
  }

  if (nan_at != INT_MAX) atomicMin(nan_flag, static_cast<unsigned long long>(r * vocab + nan_at));

  int x0 = best_i;
  if (kGumbel) {
    double b = best_d;
    block_argmax(b, x0);
  } else {
    float b = best_f;
    block_argmax(b, x0);
  }
  if (x0 == INT_MAX) x0 = 0;  // no candidate (every logit -inf at T > 0): token 0, as the CPU

  double conf = 0;
  if (kConf) {
    const bool dropped = (a.logits_eos_inf && x0 == a.eos) ||
                         (a.confidence_eos_eot_inf && (x0 == a.eot || (!kGumbel && x0 == a.eos)));
    const float fx0 = dropped ? -INFINITY : row[x0];
    if (fx0 != -INFINITY && M != -INFINITY)
      conf = exp(static_cast<double>(fx0) - static_cast<double>(M)) / S;
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

template <bool kGumbel, bool kConf, bool kFilter = false>
void sample_launch(float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                   const SampleArgs& a, int32_t* tokens, double* confidence,
                   unsigned long long* flag, cudaStream_t s) {
  DIFFLM_LAUNCH((sample_rows_kernel<kGumbel, kConf, kFilter>), static_cast<unsigned>(rows),
                kSampleThreads, 0, s, logits, vocab, positions, a, tokens, confidence, flag);
  CUDA_CHECK_LAUNCH("sample_rows_kernel");
}

}  // namespace

void sample_rows(float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                 const SampleParams& p, int32_t* tokens, double* confidence, Stream s) {
  CUDA_REQUIRE(rows >= 0 && rows <= 0x7fffffff, "sample_rows: bad row count");
  CUDA_REQUIRE(vocab > 0 && vocab < INT_MAX - kConfidenceSegment, "sample_rows: bad vocab size");
  CUDA_REQUIRE(p.temperature >= 0, "sample_rows: negative temperature");
  CUDA_REQUIRE(p.eos_id < vocab && p.eot_id < vocab, "sample_rows: EOS/EOT outside the vocab");
  CUDA_REQUIRE(p.top_k >= 0, "sample_rows: negative top_k");
  CUDA_REQUIRE(p.top_p > 0 && p.top_p <= 1, "sample_rows: top_p outside (0, 1]");
  CUDA_REQUIRE(p.temperature == 0 || p.top_p >= 1 || vocab < kTopPMaxVocab,
               "sample_rows: vocab too large for top_p");
  if (rows == 0) return;
  const cudaStream_t st = to_stream(s);
  const bool gumbel = p.temperature != 0;
  const bool top_k_on = p.top_k > 0 && p.top_k < vocab;
  const bool filter = gumbel && (top_k_on || p.top_p < 1);
  SampleArgs a{p.temperature,
               p.seed,
               static_cast<uint64_t>(p.step),
               p.eos_id,
               p.eot_id,
               p.logits_eos_inf,
               p.confidence_eos_eot_inf,
               top_k_on ? static_cast<int>(p.top_k) : 0,
               p.top_p,
               p.canvas,
               p.mask_id};
  // Bad-logit report: the smallest flat index r * vocab + v of a NaN or +inf, or all ones.
  AsyncScratch flag(sizeof(unsigned long long), st);
  auto* nan_flag = static_cast<unsigned long long*>(flag.p);
  CUDA_CHECK(cudaMemsetAsync(nan_flag, 0xff, sizeof(unsigned long long), st));
  if (filter && p.want_confidence)
    sample_launch<true, true, true>(logits, rows, vocab, positions, a, tokens, confidence, nan_flag,
                                    st);
  else if (filter)
    sample_launch<true, false, true>(logits, rows, vocab, positions, a, tokens, confidence,
                                     nan_flag, st);
  else if (gumbel && p.want_confidence)
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
    float value = 0;  // (unless the kernel overwrote it: the EOS/EOT writes)
    CUDA_CHECK(cudaMemcpyAsync(&pos, positions + r, sizeof pos, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(
        cudaMemcpyAsync(&value, logits + r * vocab + v, sizeof value, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    throw EngineError(ErrorCode::Internal, bad_logit_message(pos, v, value));
  }
}

}  // namespace cuda
}  // namespace difflm
