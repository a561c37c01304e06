// e^x for x <= 0 in float32, the same bits on the CPU and on the GPU (Cephes' expf: range
// reduction by ln 2 in two parts, a degree-6 polynomial; relative error below 2e-7). Every
// multiply-add is an explicit fmaf or a single rounding (hd.h), so neither compiler can round
// differently, and the code is branch-free so that CPU loops over it vectorize. x below -87
// (e^-87 ~ 1.6e-38, the bottom of float's normal range) and -inf give 0; NaN stays NaN.
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
  // Clamped into [-87, 0] (NaN too), so the float -> int conversion below is always defined.
  const float xc = x >= -87.0f ? (x <= 0.0f ? x : 0.0f) : -87.0f;
  // n = round(x / ln 2): one fused rounding against 1.5 * 2^23, then an exact subtraction.
  constexpr float kRound = 12582912.0f;
  const float n = fmaf(xc, 1.44269504088896341f, kRound) - kRound;
  float r = fmaf(n, -0.693359375f, xc);
  r = fmaf(n, 2.12194440e-4f, r);
  float y = 1.9875691500e-4f;
  y = fmaf(y, r, 1.3981999507e-3f);
  y = fmaf(y, r, 8.3334519073e-3f);
  y = fmaf(y, r, 4.1665795894e-2f);
  y = fmaf(y, r, 1.6666665459e-1f);
  y = fmaf(y, r, 5.0000001201e-1f);
  y = fmaf(y, mul_rn(r, r), r) + 1.0f;
  // 2^n, n in [-126, 0]: a normal float built from its exponent bits.
  const uint32_t e =
      float_bits(mul_rn(y, bits_float(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23)));
  // Below -87 (and -inf): 0; NaN: x. Masks rather than selects on float compares, which g++
  // (trapping math) will not if-convert, so loops over this vectorize.
  const uint32_t xb = float_bits(x);
  const uint32_t keep = static_cast<uint32_t>(xb > 0xC2AE0000u) - 1u;  // 0xC2AE0000 = -87.0f
  const uint32_t nan = 0u - static_cast<uint32_t>((xb & 0x7fffffffu) > 0x7f800000u);
  return bits_float(((e & keep) & ~nan) | (xb & nan));
}

}  // namespace difflm
