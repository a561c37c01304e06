// Flash-style scaled dot-product attention, float32 (kernels.h: difflm::cuda::attention).
// CPU twin: attention() in native/engine/cpu/ops.h.
//
// Build check: nvcc -std=c++17 -arch=sm_90 -I native/engine -I cuda -c cuda/attention.cu
//
// attention_kernel<C>: one block per (query tile of 8*nw rows, head), nw warps (8 by default,
// fewer when the tiles do not fit the device's shared memory). Each warp owns 8 query rows.
// Keys stream through shared memory 32 at a time; no score matrix is ever written:
//   scores   lane j of a warp scores key k0+j against the warp's 8 rows (Q rows are read as
//            broadcast float4s, K rows with an odd stride so the 32 lanes hit 32 banks);
//   softmax  online (running max m and sum l per row; warp max/sum over the 32 keys);
//   P . V    lane owns output columns lane + 32c (c < C = ceil(hd/32) rounded up to 1,2,4,8),
//            p[r][j] broadcast from lane j by shuffle, V rows read contiguously.
// All math in float32 with accurate expf, scores scaled after the dot product as the CPU does,
// so the result matches the CPU twin to ~1e-6 relative.
// With few query rows (a cached diffusion step's block, a left-to-right decode step) the blocks
// would leave most SMs idle, so the keys are split across blockIdx.z (see Split) and the parts
// merged by attention_combine; the merge only reorders float32 sums (~1e-7).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "common.cuh"
#include "kernels.h"

namespace difflm {
namespace cuda {
namespace {

constexpr int kRows = 8;   // query rows per warp
constexpr int kKeys = 32;  // keys per shared tile (one per lane)

// Shared layout (floats), all strides chosen by the host and passed in:
//   Qs [nw*8][ldq]    ldq = hd rounded up to 4 (float4 reads), pad columns zero
//   Ks [32][ldk]      ldk = ldq + 1 (odd: conflict-free column reads), pad columns zero
//   Vs [32][ldv]      ldv = 32*C, pad columns zero
struct Layout {
  int ldq, ldk, ldv;
};

// Keys split across blockIdx.z when (query tiles x heads) would leave most SMs idle (a decode
// step's few query rows): block z takes keys [z * keys, (z + 1) * keys) and writes its rows
// unnormalised to o ([split][nq][heads][hd]) with their running max and sum to ml; o == null:
// no split, the block writes `out` itself.
struct Split {
  float* o = nullptr;
  float2* ml = nullptr;
  int keys = 0;
};

// out = sum_z o_z e^(m_z - M) / sum_z l_z e^(m_z - M), M = max_z m_z: the online softmax's own
// merge rule, over the split blocks in order. A row with no visible key (every l_z = 0) gets
// zeros, as on the CPU. One warp per (query row, head).
__global__ void attention_combine(const float* __restrict__ o, const float2* __restrict__ ml,
                                  float* __restrict__ out, int nq, int n_heads, int hd, int split) {
  const int64_t rows = static_cast<int64_t>(nq) * n_heads;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  float M = -INFINITY;
  for (int z = 0; z < split; ++z) M = fmaxf(M, ml[z * rows + row].x);
  const float m_use = M == -INFINITY ? 0.f : M;
  float l = 0.f;
  for (int z = 0; z < split; ++z) {
    const float2 e = ml[z * rows + row];
    l = fmaf(e.y, expf(e.x - m_use), l);
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
  for (int d = lane; d < hd; d += 32) {
    float acc = 0.f;
    for (int z = 0; z < split; ++z)
      acc = fmaf(o[(z * rows + row) * hd + d], expf(ml[z * rows + row].x - m_use), acc);
    out[row * hd + d] = acc * inv;  // out's row (qi, h) is qi * n_heads * hd + h * hd
  }
}

template <int C>
__global__ void __launch_bounds__(256)
    attention_kernel(const float* __restrict__ q, const float* __restrict__ k,
                     const float* __restrict__ v, float* __restrict__ out, int nq, int nk,
                     int n_heads, int group, int hd, int64_t q_pos0, bool causal, float scale,
                     Layout L, Split sp) {
  DIFFLM_DYNAMIC_SMEM(float, smem, 16);
  const int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int bq = nw * kRows;
  float* Qs = smem;
  float* Ks = Qs + bq * L.ldq;
  float* Vs = Ks + kKeys * L.ldk;

  const int h = blockIdx.y, kvh = h / group;
  const int q0 = blockIdx.x * bq;
  const int64_t q_stride = static_cast<int64_t>(n_heads) * hd;
  const int64_t kv_stride = static_cast<int64_t>(n_heads / group) * hd;

  // Q tile (rows past nq are zeros; they are computed like the others but never written).
  for (int r = warp; r < bq; r += nw) {
    const int qi = q0 + r;
    for (int d = lane; d < L.ldq; d += 32)
      Qs[r * L.ldq + d] = (qi < nq && d < hd) ? q[qi * q_stride + h * hd + d] : 0.f;
  }

  // Keys this block can see: all, or up to the position of its last query row; with a split,
  // only its share of them.
  const int q_end = min(nq, q0 + bq);
  int64_t n_keys = nk;
  if (causal) {
    const int64_t last = q_pos0 + q_end;  // one past the last row's position
    n_keys = last < 0 ? 0 : (last < nk ? last : nk);
  }
  const int64_t k_begin = static_cast<int64_t>(blockIdx.z) * sp.keys;
  if (sp.o) n_keys = min(n_keys, k_begin + sp.keys);

  const int row0 = warp * kRows;  // the warp's first row inside the tile
  float m[kRows], l[kRows], o[kRows][C];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < C; ++c) o[r][c] = 0.f;
  }

  for (int64_t k0 = sp.o ? k_begin : 0; k0 < n_keys; k0 += kKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    // K and V tiles; keys past nk are zeros (finite, so p = 0 times them stays 0).
    for (int j = warp; j < kKeys; j += nw) {
      const int64_t kj = k0 + j;
      const bool ok = kj < n_keys;
      const float* kr = k + kj * kv_stride + kvh * hd;
      const float* vr = v + kj * kv_stride + kvh * hd;
      for (int d = lane; d < L.ldk; d += 32) Ks[j * L.ldk + d] = (ok && d < hd) ? kr[d] : 0.f;
      for (int d = lane; d < L.ldv; d += 32) Vs[j * L.ldv + d] = (ok && d < hd) ? vr[d] : 0.f;
    }
    __syncthreads();  // tiles (and Q on the first pass) visible to all warps

    // Scores of key k0+lane against the warp's rows.
    float s[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) s[r] = 0.f;
    const float* kr = Ks + lane * L.ldk;
    for (int d = 0; d < L.ldq; d += 4) {
      const float k_0 = kr[d], k_1 = kr[d + 1], k_2 = kr[d + 2], k_3 = kr[d + 3];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(Qs + (row0 + r) * L.ldq + d);
        s[r] = fmaf(qv.x, k_0, s[r]);
        s[r] = fmaf(qv.y, k_1, s[r]);
        s[r] = fmaf(qv.z, k_2, s[r]);
        s[r] = fmaf(qv.w, k_3, s[r]);
      }
    }

    // Mask, then the online softmax update. m_use guards rows that have seen no valid key yet
    // (m = -inf): exp(-inf - 0) = 0 instead of NaN.
    const int64_t kj = k0 + lane;
    float p[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t pos = q_pos0 + q0 + row0 + r;
      const bool ok = kj < n_keys && (!causal || kj <= pos);
      const float sr = ok ? s[r] * scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_reduce_max(sr));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      p[r] = expf(sr - m_use);
      const float alpha = expf(m[r] - m_use);
      l[r] = l[r] * alpha + warp_reduce_sum(p[r]);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < C; ++c) o[r][c] *= alpha;
    }

    // o += P . V over the 32 keys of the tile.
#pragma unroll 2
    for (int j = 0; j < kKeys; ++j) {
      float pj[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) pj[r] = __shfl_sync(0xffffffffu, p[r], j);
      const float* vr = Vs + j * L.ldv + lane;
#pragma unroll
      for (int c = 0; c < C; ++c) {
        const float vv = vr[32 * c];
#pragma unroll
        for (int r = 0; r < kRows; ++r) o[r][c] = fmaf(pj[r], vv, o[r][c]);
      }
    }
  }

  // A split block leaves its unnormalised rows and (m, l) to attention_combine.
  if (sp.o) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int qi = q0 + row0 + r;
      if (qi >= nq) continue;
      const int64_t row = (static_cast<int64_t>(blockIdx.z) * nq + qi) * n_heads + h;
#pragma unroll
      for (int c = 0; c < C; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) sp.o[row * hd + d] = o[r][c];
      }
      if (lane == 0) sp.ml[row] = make_float2(m[r], l[r]);
    }
    return;
  }
  // Normalise and store; a row with no visible key gets zeros, as on the CPU.
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int qi = q0 + row0 + r;
    if (qi >= nq) continue;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    float* orow = out + qi * q_stride + h * hd;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int d = lane + 32 * c;
      if (d < hd) orow[d] = o[r][c] * inv;
    }
  }
}

size_t smem_floats(int nw, const Layout& L) {
  return static_cast<size_t>(nw) * kRows * L.ldq + static_cast<size_t>(kKeys) * (L.ldk + L.ldv);
}

template <int C>
void launch(const float* q, const float* k, const float* v, float* out, int nq, int nk, int n_heads,
            int group, int hd, int64_t q_pos0, bool causal, cudaStream_t st) {
  Layout L;
  L.ldq = (hd + 3) / 4 * 4;
  L.ldk = L.ldq + 1;
  L.ldv = 32 * C;

  int dev = 0, optin = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  int nw = 8;
  while (nw > 1 && smem_floats(nw, L) * sizeof(float) > static_cast<size_t>(optin)) nw /= 2;
  const size_t smem = smem_floats(nw, L) * sizeof(float);
  CUDA_REQUIRE(smem <= static_cast<size_t>(optin),
               "attention: head_dim " + std::to_string(hd) + " needs " + std::to_string(smem) +
                   " bytes of shared memory, the device allows " + std::to_string(optin));

  auto kernel = attention_kernel<C>;
  // Allow up to the device's opt-in limit (a fixed bound, so concurrent callers with other head
  // sizes never lower it under each other).
  static std::atomic<uint64_t> done{0};
  allow_dynamic_smem(kernel, optin, done);

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));  // as the CPU computes it
  const int tiles = ceil_div(nq, nw * kRows);
  // Split the keys when the blocks would fill fewer than half the SMs, into as many parts as
  // fill them once, each part at least kMinSplitKeys keys.
  constexpr int kMinSplitKeys = 64;
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int64_t blocks = static_cast<int64_t>(tiles) * n_heads;
  int split = 1;
  if (2 * blocks <= sms && nk >= 2 * kMinSplitKeys)
    split = static_cast<int>(
        std::min<int64_t>(ceil_div(static_cast<int64_t>(sms), blocks), nk / kMinSplitKeys));
  Split sp;
  if (split == 1) {
    DIFFLM_LAUNCH(kernel, dim3(tiles, n_heads), nw * 32, smem, st, q, k, v, out, nq, nk, n_heads,
                  group, hd, q_pos0, causal, scale, L, sp);
    CUDA_CHECK_LAUNCH("attention_kernel");
    return;
  }
  sp.keys = ceil_div(nk, split * kKeys) * kKeys;  // whole key tiles per part
  split = ceil_div(nk, sp.keys);
  const int64_t rows = static_cast<int64_t>(nq) * n_heads;
  AsyncScratch o_buf(static_cast<size_t>(split * rows * hd) * sizeof(float), st);
  AsyncScratch ml_buf(static_cast<size_t>(split * rows) * sizeof(float2), st);
  sp.o = static_cast<float*>(o_buf.p);
  sp.ml = static_cast<float2*>(ml_buf.p);
  DIFFLM_LAUNCH(kernel, dim3(tiles, n_heads, split), nw * 32, smem, st, q, k, v, out, nq, nk,
                n_heads, group, hd, q_pos0, causal, scale, L, sp);
  CUDA_CHECK_LAUNCH("attention_kernel");
  constexpr int kCombineWarps = 8;
  DIFFLM_LAUNCH(attention_combine, static_cast<unsigned>(ceil_div(rows, int64_t{kCombineWarps})),
                kCombineWarps * 32, 0, st, sp.o, sp.ml, out, nq, n_heads, hd, split);
  CUDA_CHECK_LAUNCH("attention_combine");
}

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
               int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0, bool causal,
               Stream s) {
  CUDA_REQUIRE(nq >= 0 && nk >= 0 && hd >= 1 && hd <= 256, "attention: bad sizes");
  CUDA_REQUIRE(n_heads >= 1 && n_kv_heads >= 1 && n_heads % n_kv_heads == 0,
               "attention: n_heads must be a multiple of n_kv_heads");
  CUDA_REQUIRE(n_heads <= 65535, "attention: too many heads for one launch");
  // Element offsets are int64 but row indices are int: keep the sizes in int range.
  CUDA_REQUIRE(nq < (1ll << 31) && nk < (1ll << 31), "attention: sequence too long");
  if (nq == 0) return;
  CUDA_REQUIRE(q != nullptr && out != nullptr && (nk == 0 || (k != nullptr && v != nullptr)),
               "attention: null pointer");
  const cudaStream_t st = to_stream(s);
  const int group = static_cast<int>(n_heads / n_kv_heads);
  const int a = static_cast<int>(nq), b = static_cast<int>(nk), H = static_cast<int>(n_heads),
            d = static_cast<int>(hd);
  if (hd <= 32) {
    launch<1>(q, k, v, out, a, b, H, group, d, q_pos0, causal, st);
  } else if (hd <= 64) {
    launch<2>(q, k, v, out, a, b, H, group, d, q_pos0, causal, st);
  } else if (hd <= 128) {
    launch<4>(q, k, v, out, a, b, H, group, d, q_pos0, causal, st);
  } else {
    launch<8>(q, k, v, out, a, b, H, group, d, q_pos0, causal, st);
  }
}

}  // namespace cuda
}  // namespace difflm
