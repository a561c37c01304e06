// Dream's candidates (generation_utils.py sample_tokens), one block per row. CPU twin:
// dream_sample_row() in native/engine/decode/dream.cpp, followed step by step:
//   1. NaN or +inf in the row is an error (reported by the host after the kernel);
//   2. z = the logits divided by the temperature in float32 (when > 0);
//   3. Dream's top-p on z at temperature 1 (the integer weights of sampling.h, mass before the
//      token <= p: top_p_cutoff's kDreamRule), then top-k over what top-p kept; tokens below the
//      threshold count as -inf;
//   4. x0 = the first index of the max z (temperature 0), or the Gumbel-max draw at temperature 1
//      over the kept z (the CPU's sample_row on z: same Philox draws, same roundings);
//   5. the alg's confidence over softmax(kept z): maskgit_plus = p(x0) as decode/confidence.h
//      defines it (segments, float32 terms, float64 sums); topk_margin = p(1st) - p(2nd) and
//      entropy = sum p log(p + 1e-10), in float64; confidence_threshold = p(x0) as maskgit_plus;
//      alg_temp > 0 adds Gumbel noise (stream Select) to confidence / alg_temp (not for
//      confidence_threshold); origin's confidence is minus its reveal draw.
// The rows are read a few times (once per radix pass and reduction), mostly from L2: unlike
// LLaDA's one-pass kernel this one is written for exactness first.
// Exactness: tokens equal the CPU's; p(x0) differs only in the order of float64 additions and in
// the last ulp of CUDA's float64 exp; margin and entropy likewise (~1e-15 relative). A logit /
// temperature that overflows float32 is an error, as on the CPU.
#include <climits>

#include "common.cuh"
#include "decode/confidence.h"
#include "decode/dream.h"
#include "decode/masked.h"  // bad_logit_message
#include "kernels.h"
#include "row_select.cuh"

namespace difflm {
namespace cuda {

namespace {

// 512 threads, as LLaDA's sampler: each of the ~10 passes over a row is a chain of dependent
// loads, so the more warps a row has, the more loads are in flight. At 256 rows a step (two
// blocks an SM) that doubles the warps; with many more rows 256 could fit 40 warps an SM to
// 512's 32. It was 256 when the H100 timed 4.0 ms (bench/RESULTS.md); 512 is not yet timed.
constexpr int kDreamThreads = 512;

struct DreamArgs {
  double temperature;
  uint64_t seed, step;
  int top_k;  // 0 < top_k < vocab, or 0: off
  double top_p;
  int alg;
  double alg_temp;
  const int32_t* canvas;
  int32_t mask_id;
};

// Block-wide sum of a double, out of line (two calls per row).
__device__ __noinline__ double block_total(double v) {
  return block_reduce_sum(v);
}

__global__ void __launch_bounds__(kDreamThreads)
    dream_rows_kernel(const float* __restrict__ logits, int64_t vocab,
                      const int64_t* __restrict__ positions, DreamArgs a,
                      int32_t* __restrict__ tokens, double* __restrict__ confidence,
                      unsigned long long* __restrict__ nan_flag) {
  __shared__ SelectShared sh;
  const int64_t r = blockIdx.x;
  const float* row = logits + r * vocab;
  const uint64_t pos = static_cast<uint64_t>(positions[r]);
  if (a.canvas && a.canvas[pos] != a.mask_id) return;  // committed: the whole block leaves
  const int V = static_cast<int>(vocab);
  const float t = static_cast<float>(a.temperature);
  const auto z_of = [&](int v) { return a.temperature > 0 ? __fdiv_rn(row[v], t) : row[v]; };

  // 1. Bad logits (nan_flag[0]), logit / temperature overflowing float32 (nan_flag[1], a row
  // index), and the max of z.
  int bad = INT_MAX;
  bool overflow = false;
  float m = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float x = row[v], z = z_of(v);
    if (isnan(x) || x == INFINITY) bad = min(bad, v);
    overflow = overflow || !(z < INFINITY);
    m = fmaxf(m, z);
  }
  if (bad != INT_MAX) atomicMin(nan_flag, static_cast<unsigned long long>(r * vocab + bad));
  if (overflow) atomicMin(nan_flag + 1, static_cast<unsigned long long>(r));
  m = block_reduce_max(m);

  // 2. The filter threshold: top-p, then top-k among what it kept.
  float thr = -INFINITY;
  if (a.top_p < 1.0 && m != -INFINITY) {
    const double md = m;
    thr = top_p_cutoff<true>(
        V, z_of, [&](float z) { return top_p_weight(static_cast<double>(z) - md); }, a.top_p, sh);
  }
  if (a.top_k > 0) {
    const float tp = thr;
    thr = fmaxf(thr, key_value(radix_select<true>(
                         V,
                         [&](int v, uint32_t& k) {
                           const float z = z_of(v);
                           k = order_key(z >= tp ? z : -INFINITY);
                           return [] { return 1ull; };
                         },
                         static_cast<unsigned long long>(a.top_k), sh)));
  }
  // The filtered z: -inf below the threshold.
  const auto f_of = [&](int v) {
    const float z = z_of(v);
    return z >= thr ? z : -INFINITY;
  };

  // 3. The candidate.
  int x0 = INT_MAX;
  if (a.temperature == 0) {
    float best = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) take_better(best, x0, z_of(v), v);
    block_argmax(best, x0);
  } else {
    double best = -INFINITY;
    const double reach = kGumbelNoiseMax;  // temperature 1
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
      const float f = f_of(v);
      if (f == -INFINITY || f + reach < best) continue;
      const double score = gumbel_score(f, v, 1.0, true, best, a.seed, a.step, pos);
      if (score > best) best = score, x0 = v;
    }
    block_argmax(best, x0);
  }
  if (x0 == INT_MAX) x0 = 0;

  // 4. The confidence.
  double conf = 0;
  if (a.alg == static_cast<int>(DreamAlg::Origin)) {
    conf = -uniform01(a.seed, RngStream::Transfer, a.step, pos, 0);
  } else if (a.alg == static_cast<int>(DreamAlg::MaskgitPlus) ||
             a.alg == static_cast<int>(DreamAlg::ConfidenceThreshold)) {
    float M = -INFINITY;
    double S = 0;
    for (int s0 = 0; s0 < V; s0 += static_cast<int>(kConfidenceSegment)) {
      const int s1 = min(V, s0 + static_cast<int>(kConfidenceSegment));
      float seg = -INFINITY;
      for (int v = s0 + threadIdx.x; v < s1; v += blockDim.x) seg = fmaxf(seg, f_of(v));
      seg = block_reduce_max(seg);
      double part = 0;
      if (seg != -INFINITY)
        for (int v = s0 + threadIdx.x; v < s1; v += blockDim.x)
          part += static_cast<double>(exp_nonpositive(__fsub_rn(f_of(v), seg)));
      fold_confidence_segment(M, S, seg, block_total(part));
    }
    const float fx0 = f_of(x0);
    if (fx0 != -INFINITY && M != -INFINITY)
      conf = exp(static_cast<double>(fx0) - static_cast<double>(M)) / S;
  } else {
    // The max of f is m (the max always survives the filters).
    double sum = 0, second = -INFINITY;
    int at_max = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
      const float f = f_of(v);
      if (f == -INFINITY) continue;
      sum += exp(static_cast<double>(f) - m);
      if (f == m)
        ++at_max;
      else
        second = fmax(second, static_cast<double>(f));
    }
    sum = block_total(sum);
    if (a.alg == static_cast<int>(DreamAlg::TopkMargin)) {
      at_max = static_cast<int>(block_reduce_sum(static_cast<float>(at_max)));
      second = block_reduce_max(second);
      if (at_max >= 2) second = m;
      const double p2 = second == -INFINITY ? 0.0 : exp(second - m);
      conf = (1.0 - p2) / sum;
    } else {
      double part = 0;
      for (int v = threadIdx.x; v < V; v += blockDim.x) {
        const float f = f_of(v);
        if (f == -INFINITY) continue;
        const double p = exp(static_cast<double>(f) - m) / sum;
        part += p * log(p + 1e-10);
      }
      conf = block_total(part);
    }
  }
  if (a.alg != static_cast<int>(DreamAlg::Origin) &&
      a.alg != static_cast<int>(DreamAlg::ConfidenceThreshold) && a.alg_temp > 0) {
    const double u = uniform01(a.seed, RngStream::Select, a.step, pos, 0);
    conf = __dsub_rn(__ddiv_rn(conf, a.alg_temp), log(-log(u)));
  }
  if (threadIdx.x == 0) {
    tokens[r] = x0;
    confidence[r] = conf;
  }
}

}  // namespace

void dream_rows(const float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                const DreamParams& p, int32_t* tokens, double* confidence, Stream s) {
  CUDA_REQUIRE(rows >= 0 && rows <= 0x7fffffff, "dream_rows: bad row count");
  CUDA_REQUIRE(vocab > 0 && vocab < INT_MAX - kConfidenceSegment, "dream_rows: bad vocab size");
  CUDA_REQUIRE(p.top_p >= 1 || vocab < kTopPMaxVocab, "dream_rows: vocab too large for top_p");
  CUDA_REQUIRE(p.temperature >= 0 && p.top_k >= 0 && p.top_p > 0 && p.top_p <= 1 && p.alg >= 0 &&
                   p.alg <= 4 && p.alg_temp >= 0,
               "dream_rows: bad parameters");
  if (rows == 0) return;
  const cudaStream_t st = to_stream(s);
  const DreamArgs a{p.temperature,
                    p.seed,
                    static_cast<uint64_t>(p.step),
                    p.top_k > 0 && p.top_k < vocab ? static_cast<int>(p.top_k) : 0,
                    p.top_p,
                    p.alg,
                    p.alg_temp,
                    p.canvas,
                    p.mask_id};
  AsyncScratch flag(2 * sizeof(unsigned long long), st);
  auto* nan_flag = static_cast<unsigned long long*>(flag.p);
  CUDA_CHECK(cudaMemsetAsync(nan_flag, 0xff, 2 * sizeof(unsigned long long), st));
  DIFFLM_LAUNCH(dream_rows_kernel, static_cast<unsigned>(rows), kDreamThreads, 0, st, logits, vocab,
                positions, a, tokens, confidence, nan_flag);
  CUDA_CHECK_LAUNCH("dream_rows_kernel");
  throw_if_bad_logits_flag(nan_flag, logits, vocab, positions, st);
  unsigned long long overflow_row = 0;
  CUDA_CHECK(cudaMemcpyAsync(&overflow_row, nan_flag + 1, sizeof overflow_row,
                             cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (overflow_row != ~0ull) {
    int64_t pos = 0;
    CUDA_CHECK(
        cudaMemcpyAsync(&pos, positions + overflow_row, sizeof pos, cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaStreamSynchronize(st));
    throw EngineError(ErrorCode::InvalidArgument, temperature_overflow_message(p.temperature, pos));
  }
}

}  // namespace cuda
}  // namespace difflm
