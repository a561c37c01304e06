// Float32 products on tensor cores to float32 accuracy ("3xTF32"): x = big + small with both
// parts tf32 (10 mantissa bits), and a . b ~ big_a big_b + big_a small_b + small_a big_b, each
// term an mma.sync m16n8k8 with tf32 operands and float32 accumulation. big = rna(x) is within
// 2^-11 |x| of x; x - big is exact in float32 and small = rna(x - big) within 2^-22 |x| of it,
// so the parts hold x to 2^-22 and the dropped small_a small_b is 2^-22 |a b|: a few 1e-7 of
// each product, against float32's 6e-8 rounding, at three tensor-core instructions where plain
// TF32 (1e-3) takes one. The tensor cores round each mma's sum toward zero, so a caller keeps
// long sums out of one accumulator (see the P V step of attention_tc.cuh). sm_80 and newer.
// |x| >= (2 - 2^-11) 2^127 rounds to inf and gives NaN; activations never come near.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace difflm {
namespace cuda {
namespace tf32 {

// cvt.rna.tf32.f32: round to nearest, ties away from zero; the low 13 bits of the result are 0.
__device__ __forceinline__ float round(float x) {
#if defined(DIFFLM_SIMT_EMU)
  return ::difflm_emu::cvt_rna_tf32(x);
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
#else
  __trap();
  return x;
#endif
}

// x as (big, small): x ~ big + small, both tf32.
__device__ __forceinline__ float2 split(float x) {
  const float big = round(x);
  return make_float2(big, round(x - big));
}

__device__ __forceinline__ uint32_t bits(float x) {
#if defined(DIFFLM_SIMT_EMU)
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
#else
  return __float_as_uint(x);
#endif
}

// d += a . b for one m16n8k8 tile (PTX ISA, "Matrix Fragments for mma.m16n8k8" with .tf32;
// g = lane / 4, t = lane % 4):
//   A 16x8 row-major: a[0] (row g, col t), a[1] (g+8, t), a[2] (g, t+4), a[3] (g+8, t+4)
//   B 8x8 (k x n):    b[0] (k t, n g), b[1] (k t+4, n g)
//   C 16x8:           d[0], d[1] (row g, cols 2t, 2t+1), d[2], d[3] (row g+8, cols 2t, 2t+1)
__device__ __forceinline__ void mma(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(DIFFLM_SIMT_EMU)
  ::difflm_emu::mma1688_tf32(d, a, b);
#elif !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}

// An operand fragment (N registers a lane) as its big and small parts.
template <int N>
struct Fragment {
  uint32_t big[N], small[N];
};

// Splits a fragment's floats as they are read (an operand used once per split).
template <int N>
__device__ __forceinline__ Fragment<N> split_fragment(const float (&x)[N]) {
  Fragment<N> f;
#pragma unroll
  for (int e = 0; e < N; ++e) {
    const float2 p = split(x[e]);
    f.big[e] = bits(p.x);
    f.small[e] = bits(p.y);
  }
  return f;
}

// A B fragment from (big, small) pairs split once when stored.
__device__ __forceinline__ Fragment<2> stored_fragment(float2 b0, float2 b1) {
  return Fragment<2>{{bits(b0.x), bits(b1.x)}, {bits(b0.y), bits(b1.y)}};
}

// d += a . b to float32 accuracy. The two corrections go first, so that they are summed with
// each other before the big term joins (the order matters at rounding level only).
__device__ __forceinline__ void mma3(float d[4], const Fragment<4>& a, const Fragment<2>& b) {
  mma(d, a.small, b.big);
  mma(d, a.big, b.small);
  mma(d, a.big, b.big);
}

}  // namespace tf32
}  // namespace cuda
}  // namespace difflm
