// Block-wide pieces of the per-row sampling kernels (sample.cu: LLaDA's candidates and the
// top-k / top-p filter; dream_sample.cu: Dream's): index-ordered argmax, a radix select over
// order-preserving float keys with integer weights, and the Gumbel score. One block per row;
// every thread of the block calls the block-wide ones.
#pragma once

#include <climits>

#include "common.cuh"
#include "decode/masked.h"  // bad_logit_message
#include "decode/sampling.h"
#include "errors.h"
#include "rng.h"

namespace difflm {
namespace cuda {
namespace {

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
};

// Block-wide radix select: the largest key K such that the total weight of the tokens with
// key >= K reaches `target` (>= 1, and at most the total of the counted weights), where kw(v, key)
// gives token v's key and returns a functor that yields its weight (0: not counted; only
// evaluated for the tokens under the current prefix). kUnit: every counted weight is 1 (counts;
// warp-aggregated atomics). Every thread of the block must call it; the result goes to every
// thread. Exact: the sums are integers. Between a pass's reads of sh.digit / sh.above and warp
// 0's next writes lie two barriers (after the zeroing, after the histogram), also across calls.
template <bool kUnit, class KeyWeight>
__device__ uint32_t radix_select(int vocab, const KeyWeight& kw, unsigned long long target,
                                 SelectShared& sh) {
  const int lane = threadIdx.x & 31;
  uint32_t prefix = 0, mask = 0;
  unsigned long long above = 0;  // used by warp 0
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
      // The digit is in the highest lane whose bins from 8l up, plus what lies above the prefix,
      // still reach the target (lane 0 always does: the invariant of the select).
      const unsigned ballot = __ballot_sync(0xffffffffu, above + suffix >= target);
      const int l = ballot ? 31 - __clz(ballot) : 0;
      if (lane == l) {
        unsigned long long run = above + suffix - own;
        int digit = (kBins / 32) * l;
        for (int b = (kBins / 32) * l + (kBins / 32) - 1; b >= (kBins / 32) * l; --b) {
          if (run + sh.hist[b] >= target) {
            digit = b;
            break;
          }
          run += sh.hist[b];
        }
        sh.digit = static_cast<uint32_t>(digit);
        sh.above = run;
      }
    }
    __syncthreads();
    prefix |= sh.digit << shift;
    mask |= static_cast<uint32_t>(kBins - 1) << shift;
    above = sh.above;
  }
  return prefix;
}

// Top-p's cutoff over the values value(v) (non-NaN floats) with integer weights weight(x)
// (sampling.h; 0 for tokens the filter already removed): the largest value whose weight sum at
// or above it reaches the target (top_p_target, or kDreamRule: dream_top_p_target), or -inf when
// the total weight W is 0 (no cutoff). A first pass sums W with a block reduction (no atomics);
// then the radix select leaves out of its histograms every token that fails top_p_may_keep
// (sampling.h) with slack = W - target, as top-p never keeps those. Every token at or above the
// cutoff passes, so the sums that decide it are unchanged (and still reach the target). The
// price is a second float64 weight per token (the sum's pass and the select's first pass). On a
// peaked row most tokens fail it (at p = 0.95 and V = 152064, those below ~3.3e-7 of the total),
// which keeps the histogram atomics few; they contend on a handful of bins otherwise. Every
// thread of the block must call it; the result goes to every thread.
template <bool kDreamRule, class Value, class Weight>
__device__ float top_p_cutoff(int vocab, const Value& value, const Weight& weight, double p,
                              SelectShared& sh) {
  unsigned long long total = 0;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) total += weight(value(v));
  total = block_reduce_sum(total);
  if (total == 0) return -INFINITY;
  const unsigned long long target =
      kDreamRule ? dream_top_p_target(p, total) : top_p_target(p, total);
  const unsigned long long slack = total - target;
  return key_value(radix_select<false>(
      vocab,
      [&](int v, uint32_t& k) {
        const float x = value(v);
        k = order_key(x);
        return [=] {
          const unsigned long long w = weight(x);
          return top_p_may_keep(w, vocab, slack) ? w : 0ull;
        };
      },
      target, sh));
}

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

// After a sampling kernel: `nan_flag` (device) holds the smallest flat index r * vocab + v of a
// NaN or +inf logit, or all ones; an error naming the row's canvas position, the token and the
// value (unless the kernel overwrote it: LLaDA's EOS/EOT writes). Waits for the stream: the host
// needs the candidates right after anyway, so this costs nothing extra.
inline void throw_if_bad_logits_flag(const unsigned long long* nan_flag, const float* logits,
                                     int64_t vocab, const int64_t* positions, cudaStream_t st) {
  unsigned long long nan_at = 0;
  CUDA_CHECK(cudaMemcpyAsync(&nan_at, nan_flag, sizeof nan_at, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (nan_at == ~0ull) return;
  const int64_t r = static_cast<int64_t>(nan_at / static_cast<unsigned long long>(vocab));
  const int64_t v = static_cast<int64_t>(nan_at % static_cast<unsigned long long>(vocab));
  int64_t pos = 0;
  float value = 0;
  CUDA_CHECK(cudaMemcpyAsync(&pos, positions + r, sizeof pos, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(
      cudaMemcpyAsync(&value, logits + r * vocab + v, sizeof value, cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  throw EngineError(ErrorCode::Internal, bad_logit_message(pos, v, value));
}

}  // namespace
}  // namespace cuda
}  // namespace difflm
