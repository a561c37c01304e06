// Flash-style scaled dot-product attention, float32 (kernels.h: difflm::cuda::attention).
// CPU twin: attention() in native/engine/cpu/ops.h.
//
// Build check: nvcc -std=c++17 -arch=sm_90 -I native/engine -I cuda -c cuda/attention.cu
//
// attention_kernel<C, kVGlobal>: one block per (query tile of 8*nw rows, head), nw warps (8 by
// default, fewer when the tiles do not fit the device's shared memory). Each warp owns 8 query
// rows. Keys stream through shared memory 32 at a time; no score matrix is ever written:
//   scores   lane j of a warp scores key k0+j against the warp's 8 rows (Q rows are read as
//            broadcast float4s, K rows with an odd stride so the 32 lanes hit 32 banks);
//   softmax  online (running max m and sum l per row; warp max/sum over the 32 keys);
//   P . V    lane owns output columns lane + 32c (c < C = ceil(hd/32) rounded up to 1,2,4,8),
//            p[r][j] broadcast from lane j by shuffle, V rows read contiguously.
// All math in float32 with accurate expf, scores scaled after the dot product as the CPU does,
// so the result matches the CPU twin to ~1e-6 relative.
// On sm_80 and newer, for hd <= 128, attention() can run attention_tc_kernel instead (tensor
// cores at float32 accuracy, attention_tc.cuh): when asked, or when made the default
// (kernels.h). Both split the keys across blocks when the query rows are few
// (attention_split.cuh).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <string>

#include "attention_split.cuh"
#include "attention_tc.cuh"
#include "common.cuh"
#include "kernels.h"

namespace difflm {
namespace cuda {
namespace {

using namespace attn;

constexpr int kRows = 8;   // query rows per warp
constexpr int kKeys = 32;  // keys per shared tile (one per lane)

// Shared layout (floats), all strides chosen by the host and passed in:
//   Qs [nw*8][ldq]    ldq = hd rounded up to 4 (float4 reads), pad columns zero
//   Ks [32][ldk]      ldk = ldq + 1 (odd: conflict-free column reads), pad columns zero
//   Vs [32][ldv]      ldv = 32*C, pad columns zero; absent (ldv 0) when V is read from global
//                     memory instead: kVGlobal, for a head size whose V tile would not fit in
//                     the shared memory of small devices (hd 256 on sm_75's 64 KiB)
struct Layout {
  int ldq, ldk, ldv;
};

template <int C, bool kVGlobal>
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

  const KeyRange keys = visible_keys(nq, nk, q0, bq, q_pos0, causal, sp);
  const int64_t n_keys = keys.n_keys;

  const int row0 = warp * kRows;  // the warp's first row inside the tile
  float m[kRows], l[kRows], o[kRows][C];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
#pragma unroll
    for (int c = 0; c < C; ++c) o[r][c] = 0.f;
  }

  for (int64_t k0 = keys.k_begin; k0 < n_keys; k0 += kKeys) {
    __syncthreads();  // every warp is done with the previous K/V tile
    // K and V tiles; keys past nk are zeros (finite, so p = 0 times them stays 0).
    for (int j = warp; j < kKeys; j += nw) {
      const int64_t kj = k0 + j;
      const bool ok = kj < n_keys;
      const float* kr = k + kj * kv_stride + kvh * hd;
      const float* vr = v + kj * kv_stride + kvh * hd;
      for (int d = lane; d < L.ldk; d += 32) Ks[j * L.ldk + d] = (ok && d < hd) ? kr[d] : 0.f;
      if (!kVGlobal)
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
      const bool key_ok = k0 + j < n_keys;  // (kVGlobal: V past n_keys may not exist)
      const float* vr =
          kVGlobal ? v + (k0 + j) * kv_stride + kvh * hd + lane : Vs + j * L.ldv + lane;
#pragma unroll
      for (int c = 0; c < C; ++c) {
        const float vv = !kVGlobal ? vr[32 * c] : (key_ok && lane + 32 * c < hd ? vr[32 * c] : 0.f);
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

// ---------------------------------------------------------------------------------------------
// Launch
// ---------------------------------------------------------------------------------------------

// What the launches need to know of the current device (read on every call: cheap attribute
// queries, and correct when callers switch devices).
struct DeviceInfo {
  int cc = 0, optin = 0, sms = 0;
};
DeviceInfo device_info() {
  int dev = 0;
  DeviceInfo d;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&d.optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev));
  d.cc = device_cc();
  return d;
}

Layout cuda_core_layout(int hd, int C, bool v_global) {
  Layout L;
  L.ldq = (hd + 3) / 4 * 4;
  L.ldk = L.ldq + 1;
  L.ldv = v_global ? 0 : 32 * C;
  return L;
}

size_t smem_floats(int nw, const Layout& L) {
  return static_cast<size_t>(nw) * kRows * L.ldq + static_cast<size_t>(kKeys) * (L.ldk + L.ldv);
}

// Whether the CUDA-core kernel's V tile fits in shared memory for head size hd > 128 (with one
// warp at least); else V is read from global memory (kVGlobal).
bool v_tile_fits(int hd, const DeviceInfo& di) {
  return smem_floats(1, cuda_core_layout(hd, 8, false)) * sizeof(float) <=
         static_cast<size_t>(di.optin);
}

template <int C, bool kVGlobal>
void launch_cuda_cores(const float* q, const float* k, const float* v, float* out, int nq, int nk,
                       int n_heads, int group, int hd, int64_t q_pos0, bool causal, float scale,
                       const DeviceInfo& di, cudaStream_t st) {
  const Layout L = cuda_core_layout(hd, C, kVGlobal);
  int nw = 8;
  while (nw > 1 && smem_floats(nw, L) * sizeof(float) > static_cast<size_t>(di.optin)) nw /= 2;
  const size_t smem = smem_floats(nw, L) * sizeof(float);
  CUDA_REQUIRE(smem <= static_cast<size_t>(di.optin),
               "attention: head_dim " + std::to_string(hd) + " needs " + std::to_string(smem) +
                   " bytes of shared memory, the device allows " + std::to_string(di.optin));

  auto kernel = attention_kernel<C, kVGlobal>;
  // Allow up to the device's opt-in limit (a fixed bound, so concurrent callers with other head
  // sizes never lower it under each other).
  static std::atomic<uint64_t> done{0};
  allow_dynamic_smem(kernel, di.optin, done);

  const int tiles = ceil_div(nq, nw * kRows);
  const KeySplit split(static_cast<int64_t>(tiles) * n_heads, nq, nk, n_heads, hd, kKeys, di.sms,
                       st);
  DIFFLM_LAUNCH(kernel, dim3(tiles, n_heads, split.parts()), nw * 32, smem, st, q, k, v, out, nq,
                nk, n_heads, group, hd, q_pos0, causal, scale, L, split.split());
  CUDA_CHECK_LAUNCH("attention_kernel");
  split.combine(out);
}

template <int D>
void launch_tensor_cores(const float* q, const float* k, const float* v, float* out, int nq, int nk,
                         int n_heads, int group, int hd, int64_t q_pos0, bool causal, float scale,
                         const DeviceInfo& di, cudaStream_t st) {
  auto kernel = attention_tc_kernel<D>;
  static std::atomic<uint64_t> done{0};
  allow_dynamic_smem(kernel, di.optin, done);
  const int tiles = ceil_div(nq, kTcRows);
  const KeySplit split(static_cast<int64_t>(tiles) * n_heads, nq, nk, n_heads, hd, kTcKeys, di.sms,
                       st);
  DIFFLM_LAUNCH(kernel, dim3(tiles, n_heads, split.parts()), kTcWarps * 32, TcLayout<D>::bytes, st,
                q, k, v, out, nq, nk, n_heads, group, hd, q_pos0, causal, scale, split.split());
  CUDA_CHECK_LAUNCH("attention_tc_kernel");
  split.combine(out);
}

bool tensor_cores_fit(const DeviceInfo& di, int64_t hd) {
  return di.cc >= 80 && hd >= 1 && hd <= kTcMaxHd &&
         tc_smem_bytes(hd) <= static_cast<size_t>(di.optin);
}

}  // namespace

namespace {
// Auto's choice (kernels.h: CUDA cores until the tensor-core kernel has been timed on a GPU).
std::atomic<AttentionKernel> g_default{AttentionKernel::CudaCores};
}  // namespace

bool attention_tensor_cores_available(int64_t hd) {
  return tensor_cores_fit(device_info(), hd);
}

void set_attention_default(AttentionKernel which) {
  CUDA_REQUIRE(which != AttentionKernel::Auto, "attention: the default must name a kernel");
  g_default.store(which);
}

AttentionKernel attention_default() {
  return g_default.load();
}

void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
               int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0, bool causal,
               Stream s, AttentionKernel which) {
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
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));  // as the CPU computes it
  const DeviceInfo di = device_info();

  const bool tc_ok = tensor_cores_fit(di, hd);
  CUDA_REQUIRE(which != AttentionKernel::TensorCores || tc_ok,
               "attention: the tensor-core kernel needs compute capability 8.0 or newer, head_dim "
               "<= " +
                   std::to_string(kTcMaxHd) + " and its tiles in shared memory (device: " +
                   std::to_string(di.cc) + ", head_dim " + std::to_string(hd) + ", " +
                   std::to_string(di.optin) + " bytes of shared memory)");
  const AttentionKernel want = which == AttentionKernel::Auto ? g_default.load() : which;
  if (tc_ok && want == AttentionKernel::TensorCores) {
    if (hd <= 32) {
      launch_tensor_cores<32>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
    } else if (hd <= 64) {
      launch_tensor_cores<64>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
    } else {
      launch_tensor_cores<128>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
    }
    return;
  }
  if (hd <= 32) {
    launch_cuda_cores<1, false>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
  } else if (hd <= 64) {
    launch_cuda_cores<2, false>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
  } else if (hd <= 128) {
    launch_cuda_cores<4, false>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
  } else if (v_tile_fits(d, di)) {
    launch_cuda_cores<8, false>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
  } else {
    launch_cuda_cores<8, true>(q, k, v, out, a, b, H, group, d, q_pos0, causal, scale, di, st);
  }
}

}  // namespace cuda
}  // namespace difflm
