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
//     bit for bit; a pass before it sums them for the target, and lets the histograms skip
//     the tokens too light ever to be kept: row_select.cuh's top_p_cutoff). Integer sums do not
//     depend on order, so the cutoff is the CPU's exactly, ties included.
// thr = the top-p cutoff when top-p is on, else t_k. That is 4 + 2 + 4 extra passes over the row
// (mostly from L2); the unfiltered kernels are unchanged.
#include <climits>
#include <string>

#include "common.cuh"
#include "decode/confidence.h"
#include "decode/masked.h"  // bad_logit_message
#include "decode/sampling.h"
#include "rng.h"
#include "row_select.cuh"

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

// The row's filter threshold: the Gumbel draw considers only c >= thr (see the file comment).
__device__ float filter_threshold(const float* row, int vocab, const SampleArgs& a) {
  __shared__ SelectShared sh;
  const auto cand = [&](int v) {
    const float l = row[v];
    return (a.logits_eos_inf && v == a.eos) ? -INFINITY : l;
  };
  float tk = -INFINITY;
  if (a.top_k > 0)
    tk = key_value(radix_select<true>(
        vocab,
        [&](int v, uint32_t& k) {
          k = order_key(cand(v));
          return [] { return 1ull; };
        },
        static_cast<unsigned long long>(a.top_k), sh));
  if (!(a.top_p < 1.0)) return tk;
  float m = -INFINITY;
  for (int v = threadIdx.x; v < vocab; v += blockDim.x) {
    const float c = cand(v);
    m = c > m ? c : m;
  }
  m = block_reduce_max(m);
  if (m == -INFINITY) return tk;
  const double md = m, T = a.temperature;
  // The cutoff is a value of positive weight, so at least t_k; -inf (none) leaves t_k.
  return fmaxf(tk, top_p_cutoff<false>(
                       vocab, cand,
                       [&](float c) {
                         return c >= tk ? top_p_weight((static_cast<double>(c) - md) / T) : 0ull;
                       },
                       a.top_p, sh));
}

// A segment of the row (decode/confidence.h) is held in registers, kPerThread tokens a thread.
constexpr int kPerThread = static_cast<int>(kConfidenceSegment) / kSampleThreads;
static_assert(kPerThread * kSampleThreads == kConfidenceSegment, "segment = threads x kPerThread");

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
    // This thread's tokens of the segment are base + j * kSampleThreads; past the row they read
    // as -inf, which no step below counts, so the loops need no bounds test.
    const int base = s0 + static_cast<int>(threadIdx.x);
    float l[kPerThread];
    if (s0 + static_cast<int>(kConfidenceSegment) <= V) {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) l[j] = row[base + j * kSampleThreads];
    } else {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        const int v = base + j * kSampleThreads;
        l[j] = v < V ? row[v] : -INFINITY;
      }
    }
    // The loops below are the kernel's arithmetic, and at temperature 0 its limit (integer and
    // compare instructions): one test per token finds NaN or +inf, the index only when there is
    // one, and the EOS/EOT overwrites are done by the one thread holding the token.
    bool bad = false;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) bad |= !(l[j] < INFINITY);
    if (bad) {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j)
        if (!(l[j] < INFINITY)) nan_at = min(nan_at, base + j * kSampleThreads);
    }
    const auto set_neg_inf = [&](int token) {
      // j * kSampleThreads if held here (unsigned: no overflow for any token)
      const unsigned k = static_cast<unsigned>(token) - static_cast<unsigned>(base);
      if (token < 0 || k % kSampleThreads != 0 || k / kSampleThreads >= kPerThread) return;
      // Selects over every j, not `if (j == jj)`: ptxas turned that into an indexed store and put
      // l in local memory (kernels with filters).
      const unsigned jj = k / kSampleThreads;
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) l[j] = static_cast<unsigned>(j) == jj ? -INFINITY : l[j];
    };
    if (a.logits_eos_inf) set_neg_inf(a.eos);  // l: the candidate logits c
    if (!kGumbel) {
      // Strictly greater: a thread visits its tokens in increasing order, so the first of equal
      // values stays (the block's merge compares indices). An all -inf row keeps none: token 0.
      float seg_best = -INFINITY;
      int seg_j = 0;
#pragma unroll
      for (int j = 0; j < kPerThread; ++j)
        if (l[j] > seg_best) seg_best = l[j], seg_j = j;
      if (seg_best > best_f) best_f = seg_best, best_i = base + seg_j * kSampleThreads;
    } else {
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        const float c = l[j];
        if (c != -INFINITY && (!kFilter || c >= thr) && !(c + reach < best_d)) {
          // (Skipped: tokens that cannot reach the best so far, as the CPU skips.)
          const int v = base + j * kSampleThreads;
          const double score =
              gumbel_score(c, v, a.temperature, prune, best_d, a.seed, a.step, pos);
          // Strictly greater, as the CPU: the first of equal scores stays, and an all -inf row
          // keeps no candidate (token 0).
          if (score > best_d) best_d = score, best_i = v;
        }
      }
    }
    if (kConf) {
      if (a.confidence_eos_eot_inf) {  // l: the confidence logits f
        set_neg_inf(a.eot);
        if (!kGumbel) set_neg_inf(a.eos);
      }
      float seg_max = -INFINITY;
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) seg_max = fmaxf(seg_max, l[j]);
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
  CUDA_REQUIRE(p.eos_id >= -1 && p.eos_id < vocab && p.eot_id >= -1 && p.eot_id < vocab,
               "sample_rows: EOS/EOT outside the vocab");
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
  throw_if_bad_logits_flag(nan_flag, logits, vocab, positions, st);
}

}  // namespace cuda
}  // namespace difflm
