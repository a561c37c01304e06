// The confidence of a masked-diffusion candidate: the softmax probability of token x0 over the
// confidence logits f (LLaDA's x0_p), defined so that the CPU and CUDA backends compute it alike,
// and the CUDA kernel reads each row once from memory:
//   - the row is cut into segments of kConfidenceSegment tokens; segment s has max m_s (float32)
//     and S_s = sum over its f != -inf of exp_nonpositive(f - m_s), the difference rounded to
//     float32 and the terms (bit-identical on both backends) added in float64;
//   - the segments fold left to right into (M, S) with fold_confidence_segment (float64);
//   - confidence = exp(f[x0] - M) / S in float64, or 0 when f[x0] or M is -inf.
// The backends differ only in the order of each S_s's float64 additions and in the last ulp of
// float64 exp (CUDA's vs the C library's), ~1e-16 relative. The
// float32 terms make it the probability to ~1e-7 relative, the precision of the float32 softmax
// in LLaDA's own code.
#pragma once

#include <cstdint>
#include <limits>

#include "exp_nonpositive.h"
#include "hd.h"

namespace difflm {

constexpr int64_t kConfidenceSegment = 8192;

// Folds segment (m_s, S_s) into (M, S), where S is the sum of exp(f - M) over the segments so
// far; a segment with m_s = -inf (nothing counted) leaves them as they are.
DIFFLM_HD void fold_confidence_segment(float& M, double& S, float m_s, double S_s) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (m_s == kNegInf) return;
  if (M == kNegInf) {
    M = m_s;
    S = S_s;
  } else if (m_s > M) {
    S = add_rn(mul_rn(S, exp(static_cast<double>(M) - static_cast<double>(m_s))), S_s);
    M = m_s;
  } else {
    S = add_rn(S, mul_rn(S_s, exp(static_cast<double>(m_s) - static_cast<double>(M))));
  }
}

// CPU: the confidence of x0 over f[0, vocab) (no NaN).
double softmax_confidence(const float* f, int64_t vocab, int64_t x0);

}  // namespace difflm
