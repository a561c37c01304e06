#include "confidence.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace difflm {

namespace {

// Sum over f[0, n) of exp_nonpositive(f - m) in float64. Lane sums keep the loop vectorizable
// (the order of float64 additions is free: confidence.h). The "fma" clone turns the fmaf calls
// into instructions (every AVX2 machine has FMA).
__attribute__((target_clones("avx512f", "fma", "default"))) double segment_exp_sum(const float* f,
                                                                                   int64_t n,
                                                                                   float m) {
  constexpr int64_t W = 16;
  double lane[W] = {};
  int64_t j = 0;
  for (; j + W <= n; j += W)
    for (int64_t l = 0; l < W; ++l) lane[l] += static_cast<double>(exp_nonpositive(f[j + l] - m));
  double sum = 0;
  for (; j < n; ++j) sum += static_cast<double>(exp_nonpositive(f[j] - m));
  for (const double s : lane) sum += s;
  return sum;
}

// Max over f[0, n) (no NaN), with lane maxima so that the loop vectorizes.
__attribute__((target_clones("avx512f", "avx2", "default"))) float segment_max(const float* f,
                                                                               int64_t n) {
  constexpr int64_t W = 16;
  float lane[W];
  for (float& m : lane) m = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + W <= n; j += W)
    for (int64_t l = 0; l < W; ++l) lane[l] = f[j + l] > lane[l] ? f[j + l] : lane[l];
  float m = -std::numeric_limits<float>::infinity();
  for (; j < n; ++j) m = std::max(m, f[j]);
  for (const float x : lane) m = std::max(m, x);
  return m;
}

}  // namespace

double softmax_confidence(const float* f, int64_t vocab, int64_t x0) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float M = kNegInf;
  double S = 0;
  for (int64_t s0 = 0; s0 < vocab; s0 += kConfidenceSegment) {
    const int64_t n = std::min(kConfidenceSegment, vocab - s0);
    const float m = segment_max(f + s0, n);
    if (m == kNegInf) continue;
    fold_confidence_segment(M, S, m, segment_exp_sum(f + s0, n, m));
  }
  if (f[x0] == kNegInf || M == kNegInf) return 0.0;
  return std::exp(static_cast<double>(f[x0]) - static_cast<double>(M)) / S;
}

}  // namespace difflm
