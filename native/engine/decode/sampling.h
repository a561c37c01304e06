// Top-k / top-p (nucleus) filtering of one row of logits before the categorical draw, as Hugging
// Face's TopKLogitsWarper and TopPLogitsWarper do it (top-k first, then top-p over what top-k
// kept), with every rounding pinned down so that the CUDA kernel (cuda/sample.cu) keeps exactly
// the same set of tokens as this CPU twin, ties included.
//
// Exact definitions (c = the row's float32 logits; NaN is not allowed; -0.0 == +0.0):
//  top-k (0 < k < vocab; otherwise off): keep v iff c[v] >= the k-th largest value of c counted
//    with multiplicity (-inf values count too). Every token tied with the k-th value is kept, so
//    more than k tokens may survive (HF: `scores < topk(scores, k)[..., -1]` is removed).
//  top-p (0 < p < 1; p >= 1 is off): over the tokens that top-k kept (S_k), with m = max c and
//    T the temperature, each token has the integer weight w[v] = top_p_weight((c[v] - m) / T)
//    (float64 subtraction and division; top_p_weight below is a deterministic float64 exp scaled
//    to 2^40 and rounded to an integer). Let W = sum of w over S_k and
//    target = min(W, ceil(p * double(W))). For a value t let M(t) = sum of w[v] over v in S_k
//    with c[v] >= t. The cutoff t* is the LARGEST value of c over S_k with M(t*) >= target, and
//    top-p keeps v in S_k iff c[v] >= t*. In words: sort by logit descending; keep the shortest
//    prefix whose probability mass reaches p (HF's `cumsum(ascending) <= 1 - p` is removed,
//    i.e. a token is kept iff the mass strictly before it is < p), plus every token tied with
//    the last one kept. The most likely token always survives. No-op when m is -inf or W is 0.
//  Removed tokens become -inf; kept ones are unchanged.
// Because the weights are integers, the sums are exact in any order, so the GPU (radix selects
// over histograms) and the CPU (a sort) find the same t*. The mass is that of
// softmax(c / T) up to ~1e-12 per token (2^-40 relative to the most likely token); tokens with
// (c - m) / T < -32 weigh 0 (their probability is below 1.3e-14 of the most likely one's).
// Differences from HF: HF computes the softmax in float32 and may split a tie group at the
// cutoff (sort order); here ties at both cutoffs are kept whole. Dream's sample_tokens applies
// top-p BEFORE top-k, keeps a token iff the mass before it is <= p (not < p), and takes its
// confidence from the filtered distribution: apply_dream_top_p below and dream_sample_row
// (decode/dream.h) do that for Dream models (tie groups again kept whole, where Dream's sort may
// split them); apply_top_k_top_p follows HF's order and LLaDA's confidence (sample_row_filtered).
#pragma once

#include <math.h>

#include <cstdint>

#include "../rng.h"  // DIFFLM_HD

namespace difflm {

struct TopKTopP {
  int64_t top_k = 0;   // 0: off (also off when >= vocab)
  double top_p = 1.0;  // 1: off (must be in (0, 1])
  bool active(int64_t vocab) const { return (top_k > 0 && top_k < vocab) || top_p < 1.0; }
};

// The largest vocabulary for which the top-p weights sum within uint64 (each weight <= 2^40).
constexpr int64_t kTopPMaxVocab = int64_t{1} << 23;

// The integer weight 2^40 * exp(z) of a token with scaled logit z = (c - m) / T <= 0, rounded to
// nearest; 0 for z < -32, -inf and NaN. exp is evaluated as 2^n * e^r (n = rint(z / ln 2), Cody-
// Waite reduction, degree-11 Taylor polynomial, relative error < 1e-14) using only correctly
// rounded operations with explicit fma(), so host and device compute the same bits whether or
// not the compiler contracts multiply-adds.
DIFFLM_HD uint64_t top_p_weight(double z) {
  if (!(z >= -32.0)) return 0;
  const double n = rint(z * 1.4426950408889634);
  double r = fma(-n, 6.93147180369123816490e-01, z);  // ln 2, high part
  r = fma(-n, 1.90821492927058770002e-10, r);         // ln 2, low part
  double p = 2.505210838544172e-08;                   // 1/11!
  p = fma(p, r, 2.755731922398589e-07);               // 1/10!
  p = fma(p, r, 2.7557319223985893e-06);
  p = fma(p, r, 2.48015873015873e-05);
  p = fma(p, r, 0.0001984126984126984);
  p = fma(p, r, 0.001388888888888889);
  p = fma(p, r, 0.008333333333333333);
  p = fma(p, r, 0.041666666666666664);
  p = fma(p, r, 0.16666666666666666);
  p = fma(p, r, 0.5);
  p = fma(p, r, 1.0);
  p = fma(p, r, 1.0);
  const double e = ldexp(p, static_cast<int>(n));           // exact: n in [-47, 0], no subnormals
  return static_cast<uint64_t>(e * 1099511627776.0 + 0.5);  // 2^40; the product is exact
}

// target = min(W, ceil(p * double(W))) for W > 0 (see above); the same bits on host and device.
DIFFLM_HD uint64_t top_p_target(double p, uint64_t total) {
  const double t = ceil(p * static_cast<double>(total));
  if (!(t < static_cast<double>(total))) return total;
  return t < 1.0 ? 1 : static_cast<uint64_t>(t);
}

// Dream's target (apply_dream_top_p): a token is kept iff the mass before it is <= p, i.e. (the
// integer weights) at most floor(p * W), i.e. below floor(p * W) + 1; W when that is more.
DIFFLM_HD uint64_t dream_top_p_target(double p, uint64_t total) {
  const double t = floor(p * static_cast<double>(total));
  if (!(t < static_cast<double>(total))) return total;
  return static_cast<uint64_t>(t) + 1;
}

// Top-p's bound on the tokens it can keep, for either target above (the GPU's radix select uses it
// to leave most of a peaked row out of its histograms): with W the total weight and
// slack = W - target, a token whose weight w has vocab * (w + 1) <= slack is never kept. Why: a
// kept token u has less than `target` strictly above its value (else a larger cutoff would reach
// the target), so the tokens at or below it weigh more than slack; they are at most vocab, and
// none weighs more than w_u + 1 (top_p_weight is monotone up to one unit: relative error below
// 1e-14 of at most 2^40, then rounding). The product stays below 2^64 for vocab < kTopPMaxVocab.
DIFFLM_HD bool top_p_may_keep(uint64_t w, int64_t vocab, uint64_t slack) {
  return static_cast<uint64_t>(vocab) * (w + 1) > slack;
}

// Applies top-k then top-p to logits[0, vocab) in place (removed tokens become -inf), as defined
// above. temperature > 0 scales the softmax of top-p; at temperature 0 top-p keeps the maximum's
// tie group only (the limit T -> 0). Throws EngineError(InvalidArgument) for top_k < 0, top_p
// outside (0, 1] or NaN, or top-p on a vocab of kTopPMaxVocab or more.
void apply_top_k_top_p(float* logits, int64_t vocab, double temperature, const TopKTopP& f);

// Top-k alone (k = 0 or k >= vocab: off), as defined above; throws for k < 0.
void apply_top_k(float* logits, int64_t vocab, int64_t k);

// Dream's top-p (generation_utils.py top_p_logits) on logits already divided by the temperature:
// the integer weights at temperature 1, and a token is kept iff the mass of the tokens strictly
// above its tie group is <= p (HF's rule above: < p). p = 1 is off; throws for p outside (0, 1].
void apply_dream_top_p(float* logits, int64_t vocab, double p);

// The CPU twin of cuda::sample_rows with top_k / top_p: sample_row() (decode/masked.h) with the
// candidate drawn from the filtered logits. When temperature is 0 or the filter is off this is
// exactly sample_row(). Otherwise, step by step:
//   1. NaN anywhere in the row is an error (sample_row's message);
//   2. c = the row with logits[eos] = -inf when logits_eos_inf; apply_top_k_top_p(c, T);
//   3. x0 = the Gumbel-max draw over c != -inf with sample_row's noise (same seed/step/pos);
//   4. confidence and the in-place writes (EOS/EOT -inf) are sample_row's over the UNFILTERED
//      row: the softmax probability of x0 over the original unscaled logits (LLaDA's confidence),
//      not over the filtered distribution. Filtered values are not written back.
struct MaskedRequest;
struct Candidate;
Candidate sample_row_filtered(float* logits, int64_t vocab, const MaskedRequest& req,
                              const TopKTopP& f, int64_t step, int64_t pos);

}  // namespace difflm
