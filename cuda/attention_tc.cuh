// The tensor-core attention kernel of cuda/attention.cu (included there only).
//
// attention_tc_kernel<D> (sm_80 and newer, hd <= 128): the same online
// softmax with both products on tensor cores at float32 accuracy (3xTF32, cuda/mma_tf32.cuh).
// One block per (64 query rows, head), four warps of 16 rows; keys 32 at a time:
//   scores   S (16 x 32 per warp) = Q K^T by m16n8k8 tiles, Q's fragments split as read, K
//            split once per tile as it is stored (big, small interleaved);
//   softmax  on the accumulators: a thread holds rows g and g+8, the row's max and sum over the
//            4 threads of its quad;
//   P . V    P goes from the score accumulators straight into A fragments: a thread holds keys
//            2t and 2t+1 of each 8, so k index t stands for key 2t and t+4 for key 2t+1, and
//            V's B fragments are read at those keys (any order of the keys gives the same sum).
// Error: a few 1e-7 per product against the CPU (float32 and 3xTF32 rounding), ~1e-6 on the
// output; the check holds it to 1e-5 like the float32 kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "attention_split.cuh"
#include "common.cuh"
#include "mma_tf32.cuh"

namespace difflm {
namespace cuda {
namespace attn {

constexpr int kTcWarps = 4;             // 16 query rows each
constexpr int kTcRows = 16 * kTcWarps;  // query rows per block
constexpr int kTcKeys = 32;             // keys per shared tile
constexpr int kTcMaxHd = 128;           // o's accumulators: hd / 2 registers a thread

// Shared strides in floats for head size padded to D (a multiple of 32), chosen so that every
// fragment read is free of bank conflicts (g = lane / 4, t = lane % 4):
//   Qs [64][ldq]  raw Q, ldq = D + 4: A fragment (row g, col t) at bank 4g + t;
//   Ks [32][ldk]  (big, small) pairs, ldk = 2D + 8: B fragment (key g, col t) at words 8g + 2t,
//                 distinct within each half warp (64-bit loads are served a half warp at a time);
//   Vs [32][ldv]  (big, small) pairs, ldv = 2D + 4: B fragment (key 2t, col g) at words 8t + 2g.
template <int D>
struct TcLayout {
  static_assert(D % 32 == 0 && D <= kTcMaxHd, "head size padding");
  static constexpr int ldq = D + 4, ldk = 2 * D + 8, ldv = 2 * D + 4;
  static constexpr size_t bytes = sizeof(float) * (static_cast<size_t>(kTcRows) * ldq +
                                                   static_cast<size_t>(kTcKeys) * (ldk + ldv));
};

template <int D>
__global__ void __launch_bounds__(kTcWarps * 32)
    attention_tc_kernel(const float* __restrict__ q, const float* __restrict__ k,
                        const float* __restrict__ v, float* __restrict__ out, int nq, int nk,
                        int n_heads, int group, int hd, int64_t q_pos0, bool causal, float scale,
                        Split sp) {
  using L = TcLayout<D>;
  DIFFLM_DYNAMIC_SMEM(float, smem, 16);
  float* Qs = smem;
  float* Ks = Qs + kTcRows * L::ldq;
  float* Vs = Ks + kTcKeys * L::ldk;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int h = blockIdx.y, kvh = h / group;
  const int q0 = blockIdx.x * kTcRows;
  const int64_t q_stride = static_cast<int64_t>(n_heads) * hd;
  const int64_t kv_stride = static_cast<int64_t>(n_heads / group) * hd;
  const int n_d = (hd + 7) / 8;  // 8-column steps that hold data (the rest are padding zeros)

  // Q tile; rows past nq and columns past hd are zeros (computed, never written).
  for (int i = threadIdx.x; i < kTcRows * D; i += kTcWarps * 32) {
    const int r = i / D, d = i % D, qi = q0 + r;
    Qs[r * L::ldq + d] = (qi < nq && d < hd) ? q[qi * q_stride + h * hd + d] : 0.f;
  }

  const KeyRange keys = visible_keys(nq, nk, q0, kTcRows, q_pos0, causal, sp);
  const int64_t n_keys = keys.n_keys;

  const int row0 = warp * 16 + g;  // the thread's rows in the tile: row0 and row0 + 8
  const float* qa = Qs + row0 * L::ldq + t;
  float o[D / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[n][e] = 0.f;

  for (int64_t k0 = keys.k_begin; k0 < n_keys; k0 += kTcKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    // K and V split into (big, small) as stored; keys past n_keys are zeros. A constant stride
    // and a bounded unroll let a thread have several rows' loads in flight at once.
#pragma unroll 8
    for (int i = threadIdx.x; i < kTcKeys * D; i += kTcWarps * 32) {
      const int j = i / D, d = i % D;
      const int64_t kj = k0 + j;
      const bool ok = kj < n_keys && d < hd;
      const int64_t off = kj * kv_stride + kvh * hd + d;
      reinterpret_cast<float2*>(Ks + j * L::ldk)[d] = tf32::split(ok ? k[off] : 0.f);
      reinterpret_cast<float2*>(Vs + j * L::ldv)[d] = tf32::split(ok ? v[off] : 0.f);
    }
    __syncthreads();  // tiles (and Q on the first pass) visible to all warps

    // S = Q K^T: s[n] is the 16 x 8 tile of keys k0 + 8n ...
    float s[kTcKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kTcKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 8; ++kk) {
      if (kk >= n_d) break;
      const float av[4] = {qa[8 * kk], qa[8 * L::ldq + 8 * kk], qa[8 * kk + 4],
                           qa[8 * L::ldq + 8 * kk + 4]};
      const tf32::Fragment<4> a = tf32::split_fragment(av);
#pragma unroll
      for (int n = 0; n < kTcKeys / 8; ++n) {
        const float2* kr = reinterpret_cast<const float2*>(Ks + (8 * n + g) * L::ldk) + 8 * kk + t;
        tf32::mma3(s[n], a, tf32::stored_fragment(kr[0], kr[4]));
      }
    }

    // Mask, then the online softmax update per row (e / 2 picks the row, e % 2 the key of the
    // pair); m_use guards rows that have seen no valid key yet, as in attention_kernel.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kTcKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t kj = k0 + 8 * n + 2 * t + (e & 1);
        const int64_t pos = q_pos0 + q0 + row0 + 8 * (e >> 1);
        const bool ok = kj < n_keys && (!causal || kj <= pos);
        s[n][e] = ok ? s[n][e] * scale : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
      }
    float m_use[2], alpha[2], sum[2] = {0.f, 0.f};
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);
      m_use[r] = m_new == -INFINITY ? 0.f : m_new;
      alpha[r] = expf(m[r] - m_use[r]);
      m[r] = m_new;
    }
#pragma unroll
    for (int n = 0; n < kTcKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[n][e] = expf(s[n][e] - m_use[e >> 1]);
        sum[e >> 1] += s[n][e];
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
      sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
      l[r] = l[r] * alpha[r] + sum[r];
    }
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e >> 1];

    // o += P V. The tensor cores round each mma's float32 sum toward zero (Fasi et al. 2021), a
    // bias that would grow with the number of key tiles if o accumulated inside the mma (2e-5
    // at 2048 keys), so each tile's P V is summed from zero in `acc` and added to o on the CUDA
    // cores, which round to nearest. A fragment (row, k t) is key 2t of the 8, (row, k t+4)
    // key 2t+1.
    tf32::Fragment<4> a[kTcKeys / 8];
#pragma unroll
    for (int kk = 0; kk < kTcKeys / 8; ++kk) {
      const float pv[4] = {s[kk][0], s[kk][2], s[kk][1], s[kk][3]};
      a[kk] = tf32::split_fragment(pv);
    }
    const float2* v0 = reinterpret_cast<const float2*>(Vs + 2 * t * L::ldv) + g;  // key 2t, col g
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      if (n >= n_d) continue;  // (not break: a break here made ptxas spill at D = 32)
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int kk = 0; kk < kTcKeys / 8; ++kk) {
        const float2* vk = v0 + 4 * kk * L::ldv + 8 * n;  // 8 keys = 4 ldv float2s further
        tf32::mma3(acc, a[kk], tf32::stored_fragment(vk[0], vk[L::ldv / 2]));
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] += acc[e];
    }
  }

  // Store as attention_kernel does: column 8n + 2t + c of row r is o[n][2r + c].
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int qi = q0 + row0 + 8 * r;
    if (qi >= nq) continue;
    if (sp.o) {
      const int64_t row = (static_cast<int64_t>(blockIdx.z) * nq + qi) * n_heads + h;
#pragma unroll
      for (int n = 0; n < D / 8; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int d = 8 * n + 2 * t + c;
          if (d < hd) sp.o[row * hd + d] = o[n][2 * r + c];
        }
      if (t == 0) sp.ml[row] = make_float2(m[r], l[r]);
      continue;
    }
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    float* orow = out + qi * q_stride + h * hd;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int d = 8 * n + 2 * t + c;
        if (d < hd) orow[d] = o[n][2 * r + c] * inv;
      }
  }
}

// The tensor-core kernel's shared memory for head size hd (hd <= kTcMaxHd).
inline size_t tc_smem_bytes(int64_t hd) {
  return hd <= 32 ? TcLayout<32>::bytes : hd <= 64 ? TcLayout<64>::bytes : TcLayout<128>::bytes;
}
}  // namespace attn
}  // namespace cuda
}  // namespace difflm
