// Unmasking selection on the device: commit the k eligible positions of largest confidence
// (ties: lower position first). CPU twin: the partial_sort and commit loop in generate_masked()
// (native/engine/decode/masked.cpp). n is one block of the canvas (at most a few thousand), so
// one thread block ranks every position directly: rank(i) = number of eligible j that come
// before i in the order (conf_j > conf_i, or conf_j == conf_i and j < i). Ranks of eligible
// positions are distinct and cover [0, n_eligible), so rank < k picks exactly the CPU's set and
// committed[rank] = i lists it in the CPU's order. O(n^2) comparisons: ~4M at n = 2048, a few
// microseconds, cheaper than any sort's launch overhead at these sizes.
//
// select_threshold (parallel decoding; CPU twin: select_threshold() in decode/select.h) ranks the
// same way; the positions with confidence >= threshold are exactly ranks [0, n_above), so it
// commits rank < max(n_above, 1) and reports that count (0 when nothing is eligible).
#include "common.cuh"

namespace difflm {
namespace cuda {

namespace {

constexpr int kSelectThreads = 512;

// Calls on_ranked(i, rank) for every eligible position i, with its rank in the order
// (confidence desc, position asc) among the eligible positions. Every thread of the (single)
// block must call it; it contains __syncthreads and ends without one.
template <class OnRanked>
__device__ void for_each_ranked(const double* __restrict__ confidence,
                                const uint8_t* __restrict__ eligible, int64_t n,
                                const OnRanked& on_ranked) {
  // The j side is staged through shared memory one tile of blockDim.x positions at a time.
  __shared__ double conf_j[kSelectThreads];
  __shared__ uint8_t elig_j[kSelectThreads];
  // Outer loop over i tiles: every thread runs the same trip count (the bound is block-uniform)
  // so the __syncthreads inside are reached by all.
  for (int64_t i0 = 0; i0 < n; i0 += blockDim.x) {
    const int64_t i = i0 + threadIdx.x;
    const bool mine = i < n && eligible[i] != 0;
    const double ci = mine ? confidence[i] : 0.0;
    int64_t rank = 0;
    for (int64_t j0 = 0; j0 < n; j0 += blockDim.x) {
      __syncthreads();  // the previous tile is no longer read
      const int64_t j = j0 + threadIdx.x;
      conf_j[threadIdx.x] = j < n ? confidence[j] : 0.0;
      elig_j[threadIdx.x] = j < n ? eligible[j] : 0;
      __syncthreads();
      if (mine) {
        const int64_t m = n - j0 < blockDim.x ? n - j0 : blockDim.x;
        for (int64_t t = 0; t < m; ++t) {
          const double cj = conf_j[t];
          rank += elig_j[t] != 0 && (cj > ci || (cj == ci && j0 + t < i));
        }
      }
    }
    if (mine) on_ranked(i, rank);
  }
}

__global__ void __launch_bounds__(kSelectThreads)
    select_commit_kernel1(const double* __restrict__ confidence, const int32_t* __restrict__ tokens,
                          const uint8_t* __restrict__ eligible, int64_t n, int64_t k,
                          int32_t* __restrict__ canvas, int32_t* __restrict__ committed) {
  __shared__ unsigned long long n_eligible;
  if (threadIdx.x == 0) n_eligible = 0;
  __syncthreads();
  for_each_ranked(confidence, eligible, n, [&](int64_t i, int64_t rank) {
    atomicAdd(&n_eligible, 1ull);
    if (rank < k) {
      canvas[i] = tokens[i];
      committed[rank] = static_cast<int32_t>(i);
    }
  });
  __syncthreads();
  // k larger than the eligible count: the unused tail of committed[0..k) is -1. The ranks
  // written above are all < n_eligible, so these writes never overlap them.
  const int64_t ne = static_cast<int64_t>(n_eligible);
  for (int64_t j = ne + threadIdx.x; j < k; j += blockDim.x) committed[j] = -1;
}

__global__ void __launch_bounds__(kSelectThreads)
    select_threshold_kernel1(const double* __restrict__ confidence,
                             const int32_t* __restrict__ tokens,
                             const uint8_t* __restrict__ eligible, int64_t n, double threshold,
                             int32_t* __restrict__ canvas, int32_t* __restrict__ committed,
                             int32_t* __restrict__ n_committed) {
  __shared__ unsigned long long n_eligible, n_above;
  if (threadIdx.x == 0) n_eligible = 0, n_above = 0;
  __syncthreads();
  for_each_ranked(confidence, eligible, n, [&](int64_t i, int64_t rank) {
    atomicAdd(&n_eligible, 1ull);
    const bool above = confidence[i] >= threshold;
    if (above) atomicAdd(&n_above, 1ull);
    // Rank 0 is committed even below the threshold; the ranks >= threshold are 0..n_above-1.
    if (above || rank == 0) {
      canvas[i] = tokens[i];
      committed[rank] = static_cast<int32_t>(i);
    }
  });
  __syncthreads();
  if (threadIdx.x == 0)
    *n_committed = n_eligible == 0 ? 0 : static_cast<int32_t>(n_above > 0 ? n_above : 1);
}

}  // namespace

void select_commit(const double* confidence, const int32_t* tokens, const uint8_t* eligible,
                   int64_t n, int64_t k, int32_t* canvas, int32_t* committed, Stream s) {
  CUDA_REQUIRE(n >= 0 && n <= 0x7fffffff, "select_commit: bad position count");
  if (n == 0 && k <= 0) return;
  // One block: the ranks need every confidence, and n is small.
  DIFFLM_LAUNCH(select_commit_kernel1, 1, kSelectThreads, 0, to_stream(s), confidence, tokens,
                eligible, n, k, canvas, committed);
  CUDA_CHECK_LAUNCH("select_commit_kernel1");
}

void select_threshold(const double* confidence, const int32_t* tokens, const uint8_t* eligible,
                      int64_t n, double threshold, int32_t* canvas, int32_t* committed,
                      int32_t* n_committed, Stream s) {
  CUDA_REQUIRE(n >= 0 && n <= 0x7fffffff, "select_threshold: bad position count");
  DIFFLM_LAUNCH(select_threshold_kernel1, 1, kSelectThreads, 0, to_stream(s), confidence, tokens,
                eligible, n, threshold, canvas, committed, n_committed);
  CUDA_CHECK_LAUNCH("select_threshold_kernel1");
}

}  // namespace cuda
}  // namespace difflm
