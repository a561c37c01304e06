// Small kernels of the device-resident masked loop: positions, random-remasking confidences,
// the eligibility mask and the gather of committed tokens (see kernels.h).
#include "common.cuh"
#include "rng.h"

namespace difflm {
namespace cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  const int64_t blocks = ceil_div<int64_t>(n, kThreads);
  return static_cast<unsigned>(blocks < 65535 ? blocks : 65535);
}

__global__ void iota64_kernel(int64_t* out, int64_t n, int64_t start) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = start + i;
}

__global__ void remask_confidence_kernel(double* conf, int64_t n, int64_t row0, uint64_t seed,
                                         int64_t step) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    conf[i] = uniform01(seed, RngStream::Remask, static_cast<uint64_t>(step),
                        static_cast<uint64_t>(row0 + i), 0);
}

__global__ void mask_eligible_kernel(const int32_t* canvas, int64_t n, int32_t mask_id,
                                     uint8_t* eligible) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    eligible[i] = canvas[i] == mask_id ? 1 : 0;
}

__global__ void gather_tokens_kernel(const int32_t* canvas, const int32_t* idx, int64_t k,
                                     int32_t* out) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < k;
       j += int64_t(gridDim.x) * blockDim.x)
    out[j] = idx[j] < 0 ? -1 : canvas[idx[j]];
}

}  // namespace

void iota64(int64_t* out, int64_t n, int64_t start, Stream s) {
  if (n <= 0) return;
  DIFFLM_LAUNCH(iota64_kernel, grid_for(n), kThreads, 0, to_stream(s), out, n, start);
  CUDA_CHECK_LAUNCH("iota64_kernel");
}

void remask_confidence(double* confidence, int64_t n, int64_t row0, uint64_t seed, int64_t step,
                       Stream s) {
  if (n <= 0) return;
  DIFFLM_LAUNCH(remask_confidence_kernel, grid_for(n), kThreads, 0, to_stream(s), confidence, n,
                row0, seed, step);
  CUDA_CHECK_LAUNCH("remask_confidence_kernel");
}

void mask_eligible(const int32_t* canvas, int64_t n, int32_t mask_id, uint8_t* eligible, Stream s) {
  if (n <= 0) return;
  DIFFLM_LAUNCH(mask_eligible_kernel, grid_for(n), kThreads, 0, to_stream(s), canvas, n, mask_id,
                eligible);
  CUDA_CHECK_LAUNCH("mask_eligible_kernel");
}

void gather_tokens(const int32_t* canvas, const int32_t* idx, int64_t k, int32_t* out, Stream s) {
  if (k <= 0) return;
  DIFFLM_LAUNCH(gather_tokens_kernel, grid_for(k), kThreads, 0, to_stream(s), canvas, idx, k, out);
  CUDA_CHECK_LAUNCH("gather_tokens_kernel");
}

}  // namespace cuda
}  // namespace difflm
