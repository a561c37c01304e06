// KNN rounding of continuous diffusion LMs (notes continuous_and_other.md §7): for every row of
// x [rows][dim], the index of the best row of the table E [vocab][dim] by the score of the CPU
// twin knn_round() (native/engine/cpu/knn.cpp):
//   L2: 2 x.e_v - |e_v|^2      cosine: x.e_v / |e_v|       (e_norms holds |e_v|^2 or |e_v|)
// highest score wins, the lowest index on ties; -inf and NaN scores never win; no winner -> 0.
// Tiled like a GEMM (x tile and E tile in shared memory, float32 FMA, no TF32) with the argmax
// fused: no rows x vocab score matrix is ever written. Blocks split the vocab too, so a small
// number of rows still fills the GPU; their per-row winners meet in one 64-bit atomicMax on a
// key (order-preserving score bits << 32 | ~index), which keeps the lowest index on equal scores
// whatever order the blocks finish in. Dot products accumulate in float32 in a different order
// from the CPU's, so only near-ties (~1e-6 relative) could resolve differently.
#include <algorithm>

#include "common.cuh"

namespace difflm {
namespace cuda {

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16;  // x rows, table rows and dims per tile
constexpr int kKnnThreads = 256;             // 16 x 16 threads, 4 x 4 scores each

// Order-preserving map of a score (finite or +inf) and index to a key: larger key = better.
__device__ __forceinline__ unsigned long long knn_key(float s, int v) {
  if (s == 0.0f) s = 0.0f;  // -0 and +0 are equal scores: give them one key
  const uint32_t b = __float_as_uint(s);
  const uint32_t ord = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<unsigned long long>(ord) << 32) | (0xffffffffu - static_cast<uint32_t>(v));
}

template <DType ET>
__global__ void __launch_bounds__(kKnnThreads)
    knn_round_kernel1(const float* __restrict__ x, int64_t rows, int64_t dim,
                      const void* __restrict__ E, int64_t vocab, const float* __restrict__ e_norms,
                      bool cosine, int64_t tiles_per_block, unsigned long long* __restrict__ keys) {
  // Transposed tiles ([k][row]) so the inner loop reads rows along a warp; +1 breaks the bank
  // conflicts of the transposing stores.
  __shared__ float xs[kBK][kBM + 1];
  __shared__ float es[kBK][kBN + 1];
  __shared__ float ns[kBN];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM;
  const int64_t vocab_tiles = ceil_div<int64_t>(vocab, kBN);
  const int64_t t_begin = static_cast<int64_t>(blockIdx.x) * tiles_per_block;
  const int64_t t_end =
      t_begin + tiles_per_block < vocab_tiles ? t_begin + tiles_per_block : vocab_tiles;

  // Thread (ty, tx) scores x rows m0 + ty + 16 i against table rows v0 + tx + 16 j.
  float best[4];
  int arg[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) best[i] = -INFINITY, arg[i] = 0;

  for (int64_t t = t_begin; t < t_end; ++t) {
    const int64_t v0 = t * kBN;
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < dim; k0 += kBK) {
      __syncthreads();  // the previous tiles are no longer read
      // Each thread loads 4 of the 64 x 16 elements of each tile; 16 consecutive threads read
      // 16 consecutive dims of one row.
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int e = threadIdx.x + kKnnThreads * q;
        const int r = e / kBK, k = e % kBK;
        const int64_t kk = k0 + k;
        const int64_t m = m0 + r, v = v0 + r;
        xs[k][r] = (m < rows && kk < dim) ? x[m * dim + kk] : 0.0f;
        es[k][r] = (v < vocab && kk < dim)
                       ? load_as_f32_dev(E, ET, static_cast<size_t>(v) * dim + kk)
                       : 0.0f;
      }
      if (k0 == 0 && threadIdx.x < kBN) {
        const int64_t v = v0 + threadIdx.x;
        ns[threadIdx.x] = v < vocab ? e_norms[v] : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int k = 0; k < kBK; ++k) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = xs[k][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = es[k][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
    }
    // Fused epilogue: scores of this tile into the running argmax. Table rows ascend for each
    // thread (j, then t), so "strictly greater" keeps the lowest index; NaN never wins.
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t v = v0 + tx + 16 * j;
      if (v >= vocab) continue;
      const float n = ns[tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float s = cosine ? __fdiv_rn(acc[i][j], n) : __fsub_rn(__fmul_rn(2.0f, acc[i][j]), n);
        if (s > best[i]) best[i] = s, arg[i] = static_cast<int>(v);
      }
    }
  }
  // The 16 threads sharing a row are 16 lanes of one warp (tx = lane % 16): reduce the keys
  // with shuffles, then one atomic per row and block.
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    unsigned long long key = best[i] == -INFINITY ? 0ull : knn_key(best[i], arg[i]);
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) {
      const unsigned long long o = __shfl_xor_sync(0xffffffffu, key, off);
      key = o > key ? o : key;
    }
    const int64_t m = m0 + ty + 16 * i;
    if (tx == 0 && m < rows && key != 0) atomicMax(&keys[m], key);
  }
}

// Key back to an index; key 0 (no row could win) is index 0, as on the CPU.
__global__ void knn_finish_kernel1(const unsigned long long* __restrict__ keys, int64_t rows,
                                   int32_t* __restrict__ out) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  const unsigned long long key = keys[r];
  out[r] = key == 0 ? 0 : static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(key));
}

template <DType ET>
void knn_launch(dim3 grid, const float* x, int64_t rows, int64_t dim, const void* E, int64_t vocab,
                const float* e_norms, bool cosine, int64_t tiles_per_block,
                unsigned long long* keys, cudaStream_t s) {
  DIFFLM_LAUNCH(knn_round_kernel1<ET>, grid, kKnnThreads, 0, s, x, rows, dim, E, vocab, e_norms,
                cosine, tiles_per_block, keys);
  CUDA_CHECK_LAUNCH("knn_round_kernel1");
}

}  // namespace

void knn_round(const float* x, int64_t rows, int64_t dim, const void* E, DType et, int64_t vocab,
               const float* e_norms, bool cosine, int32_t* out, Stream s) {
  CUDA_REQUIRE(rows >= 0 && dim > 0 && vocab > 0, "knn_round: bad shape");
  CUDA_REQUIRE(vocab < 0x7fffffff, "knn_round: vocab too large for int32 indices");
  if (rows == 0) return;
  const int64_t row_tiles = ceil_div<int64_t>(rows, kBM);
  CUDA_REQUIRE(row_tiles <= 65535, "knn_round: too many rows for one launch");
  const cudaStream_t st = to_stream(s);
  // Split the vocab so that about 4 blocks per SM exist even for a single row tile.
  int dev = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int64_t vocab_tiles = ceil_div<int64_t>(vocab, kBN);
  const int64_t splits =
      std::max<int64_t>(1, std::min(vocab_tiles, ceil_div<int64_t>(4 * sms, row_tiles)));
  const int64_t tiles_per_block = ceil_div(vocab_tiles, splits);
  const dim3 grid(static_cast<unsigned>(ceil_div(vocab_tiles, tiles_per_block)),
                  static_cast<unsigned>(row_tiles));

  AsyncScratch scratch(static_cast<size_t>(rows) * sizeof(unsigned long long), st);
  auto* keys = static_cast<unsigned long long*>(scratch.p);
  CUDA_CHECK(cudaMemsetAsync(keys, 0, static_cast<size_t>(rows) * sizeof(unsigned long long), st));
  switch (et) {
    case DType::F32:
      knn_launch<DType::F32>(grid, x, rows, dim, E, vocab, e_norms, cosine, tiles_per_block, keys,
                             st);
      break;
    case DType::F16:
      knn_launch<DType::F16>(grid, x, rows, dim, E, vocab, e_norms, cosine, tiles_per_block, keys,
                             st);
      break;
    case DType::BF16:
      knn_launch<DType::BF16>(grid, x, rows, dim, E, vocab, e_norms, cosine, tiles_per_block, keys,
                              st);
      break;
  }
  DIFFLM_LAUNCH(knn_finish_kernel1, static_cast<unsigned>(ceil_div<int64_t>(rows, 256)), 256, 0, st,
                keys, rows, out);
  CUDA_CHECK_LAUNCH("knn_finish_kernel1");
}

}  // namespace cuda
}  // namespace difflm
