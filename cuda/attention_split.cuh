// Splitting the keys of an attention launch across blocks, and merging the parts: for both
// attention kernels of cuda/attention.cu (included there only). With few query rows (a cached
// diffusion step's block, a left-to-right decode step) the blocks would leave most SMs idle, so
// the keys are split across blockIdx.z and the parts merged by attention_combine; the merge only
// reorders float32 sums (~1e-7).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include "common.cuh"

namespace difflm {
namespace cuda {
namespace attn {

// Keys split across blockIdx.z when (query tiles x heads) would leave most SMs idle (a decode
// step's few query rows): block z takes keys [z * keys, (z + 1) * keys) and writes its rows
// unnormalised to o ([split][nq][heads][hd]) with their running max and sum to ml; o == null:
// no split, the block writes `out` itself.
struct Split {
  float* o = nullptr;
  float2* ml = nullptr;
  int keys = 0;
};

// The keys [k_begin, n_keys) a block of query rows [q0, q0 + rows) can see: all, or with causal
// up to the position of its last row; with a split, only part blockIdx.z of them.
struct KeyRange {
  int64_t k_begin, n_keys;
};
__device__ __forceinline__ KeyRange visible_keys(int nq, int nk, int q0, int rows, int64_t q_pos0,
                                                 bool causal, const Split& sp) {
  int64_t n_keys = nk;
  if (causal) {
    const int64_t last = q_pos0 + min(nq, q0 + rows);  // one past the last row's position
    n_keys = last < 0 ? 0 : (last < nk ? last : nk);
  }
  const int64_t k_begin = sp.o ? static_cast<int64_t>(blockIdx.z) * sp.keys : 0;
  if (sp.o) n_keys = min(n_keys, k_begin + sp.keys);
  return KeyRange{k_begin, n_keys};
}

// out = sum_z o_z e^(m_z - M) / sum_z l_z e^(m_z - M), M = max_z m_z: the online softmax's own
// merge rule, over the split blocks in order. A row with no visible key (every l_z = 0) gets
// zeros, as on the CPU. One warp per (query row, head).
static __global__ void attention_combine(const float* __restrict__ o, const float2* __restrict__ ml,
                                         float* __restrict__ out, int nq, int n_heads, int hd,
                                         int split) {
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

// The key split for a launch of `blocks` blocks (see Split), with its scratch: the keys are
// split when the blocks would fill fewer than half the SMs, into as many parts as fill them
// once, each part whole tiles of `tile_keys` and at least kMinSplitKeys keys. parts() == 1: no
// split, the kernel writes `out` itself.
class KeySplit {
 public:
  KeySplit(int64_t blocks, int nq, int nk, int n_heads, int hd, int tile_keys, int sms,
           cudaStream_t st)
      : rows_(static_cast<int64_t>(nq) * n_heads), n_heads_(n_heads), nq_(nq), hd_(hd), st_(st) {
    constexpr int kMinSplitKeys = 64;
    if (2 * blocks > sms || nk < 2 * kMinSplitKeys) return;
    const int want = static_cast<int>(
        std::min<int64_t>(ceil_div(static_cast<int64_t>(sms), blocks), nk / kMinSplitKeys));
    sp_.keys = ceil_div(nk, want * tile_keys) * tile_keys;
    parts_ = ceil_div(nk, sp_.keys);
    o_ = std::make_unique<AsyncScratch>(static_cast<size_t>(parts_ * rows_ * hd) * sizeof(float),
                                        st);
    ml_ = std::make_unique<AsyncScratch>(static_cast<size_t>(parts_ * rows_) * sizeof(float2), st);
    sp_.o = static_cast<float*>(o_->p);
    sp_.ml = static_cast<float2*>(ml_->p);
  }
  int parts() const { return parts_; }
  const Split& split() const { return sp_; }
  // After the kernel: merges the parts into out (nothing to do without a split).
  void combine(float* out) const {
    if (parts_ == 1) return;
    constexpr int kCombineWarps = 8;
    DIFFLM_LAUNCH(attention_combine, static_cast<unsigned>(ceil_div(rows_, int64_t{kCombineWarps})),
                  kCombineWarps * 32, 0, st_, sp_.o, sp_.ml, out, nq_, n_heads_, hd_, parts_);
    CUDA_CHECK_LAUNCH("attention_combine");
  }

 private:
  int64_t rows_;
  int n_heads_, nq_, hd_;
  cudaStream_t st_;
  int parts_ = 1;
  Split sp_;
  std::unique_ptr<AsyncScratch> o_, ml_;
};

}  // namespace attn
}  // namespace cuda
}  // namespace difflm
