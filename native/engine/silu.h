// silu(g) * u, SwiGLU's product, the same bits on the CPU and on the GPU for every result that
// is not NaN (cpu/ops.cpp swiglu, cuda/elementwise.cu; a NaN's payload differs). sigmoid(g) = 1 /
// (1 + e) for g >= 0 and e / (1 + e) for g < 0, with e = exp(-|g|) <= 1 from exp_nonpositive; the
// choice is a bit mask on g's sign, not a branch, so CPU loops over it vectorize. NaN stays NaN;
// silu(-inf) is NaN (-inf * 0), as in PyTorch; gates below -87 give -0 (the true value is below
// 1e-35 in magnitude).
#pragma once

#include <cstdint>

#include "exp_nonpositive.h"
#include "hd.h"

namespace difflm {

DIFFLM_HD float silu_mul(float g, float u) {
  const uint32_t gb = float_bits(g);
  const float e = exp_nonpositive(bits_float(gb | 0x80000000u));  // e^-|g|
  const uint32_t neg = 0u - (gb >> 31);                           // all ones when g < 0
  const float num = bits_float((float_bits(1.0f) & ~neg) | (float_bits(e) & neg));
  return mul_rn(div_rn(mul_rn(g, num), add_rn(1.0f, e)), u);
}

}  // namespace difflm
