// e^x for x <= 0 in float32, the same bits on the CPU and on the GPU (Cephes' expf: range
// reduction by ln 2 in two parts, a degree-6 polynomial; relative error below 2e-7). Every
// multiply-add is an explicit fmaf or a single rounding (hd.h), so neither compiler can round
// differently, and the code is branch-free so that CPU loops over it vectorize. x below -87
// (e^-87 ~ 1.6e-38, the bottom of float's normal range) and -inf give 0; NaN gives NaN. It is
// the sampling kernels' inner loop, so it is written for few integer and compare instructions
// (the GPU's scarcer pipe there): no float -> int conversion and one compare.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "hd.h"

namespace difflm {

DIFFLM_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}
DIFFLM_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

DIFFLM_HD float exp_nonpositive(float x) {
  // n = round(x / ln 2) by one fused rounding against 1.5 * 2^23: t = 1.5 * 2^23 + n exactly, so
  // n also sits in t's low mantissa bits (t's bits are 0x4B400000 + n).
  constexpr float kRound = 12582912.0f;
  const float t = fmaf(x, 1.44269504088896341f, kRound);
  const float n = t - kRound;
  float r = fmaf(n, -0.693359375f, x);
  r = fmaf(n, 2.12194440e-4f, r);
  float y = 1.9875691500e-4f;
  y = fmaf(y, r, 1.3981999507e-3f);
  y = fmaf(y, r, 8.3334519073e-3f);
  y = fmaf(y, r, 4.1665795894e-2f);
  y = fmaf(y, r, 1.6666665459e-1f);
  y = fmaf(y, r, 5.0000001201e-1f);
  y = fmaf(y, mul_rn(r, r), r) + 1.0f;
  // 2^n for n in [-126, 0] (x in [-87, 0]): a normal float whose exponent bits are n + 127,
  // taken from t's bits in unsigned arithmetic (defined for any x; other n are masked below).
  const float scale = bits_float((float_bits(t) + (127u - 0x4B400000u)) << 23);
  const float e = mul_rn(y, scale);
  // Below -87 and -inf: 0; a NaN x made e NaN. On the GPU a float compare and select are the
  // cheapest; g++ (trapping math) will not if-convert those, so on the CPU the same test is an
  // unsigned range check on the bits and a mask: x < -87 exactly when they lie in
  // [0xC2AE0001 (just below -87), 0xFF800000 (-inf)].
#if defined(__CUDA_ARCH__)
  return x < -87.0f ? 0.0f : e;
#else
  const uint32_t below = float_bits(x) - 0xC2AE0001u < 0xFF800000u - 0xC2AE0000u;
  return bits_float(float_bits(e) & (below - 1u));
#endif
}

}  // namespace difflm
