// Classifier-free guidance mix of conditional and unconditional logits, in place.
#include "common.cuh"

namespace difflm {
namespace cuda {

namespace {

__global__ void cfg_mix_kernel(float* c, const float* u, int64_t n, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    c[i] = u[i] + scale * (c[i] - u[i]);
}

}  // namespace

void cfg_mix(float* c, const float* u, int64_t n, float scale, Stream s) {
  if (n <= 0) return;
  const int threads = 256;
  const int64_t blocks = ceil_div<int64_t>(n, threads);
  DIFFLM_LAUNCH(cfg_mix_kernel, static_cast<unsigned>(blocks < 65535 ? blocks : 65535), threads, 0,
                to_stream(s), c, u, n, scale);
  CUDA_CHECK_LAUNCH("cfg_mix_kernel");
}

}  // namespace cuda
}  // namespace difflm
