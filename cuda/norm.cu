// RMSNorm forward: out = x / sqrt(mean(x^2) + eps) * w per row.
// CPU twin: rmsnorm() in native/engine/cpu/ops.cpp, which this follows step by step: the sum of
// squares is accumulated in float64, the scale is 1 / sqrt(ss / dim + eps) in float64 rounded to
// float32, and each output is (x * scale) * w in float32. Only the order of the float64
// summation differs, so results agree to about one float32 ulp.
#include "common.cuh"

namespace difflm {
namespace cuda {

namespace {

constexpr int kNormThreads = 256;

// One block per row: a block-wide float64 sum, then one pass writing the output. The row is read
// twice; the second read hits L1/L2 (a row is at most a few tens of kilobytes).
template <DType WT>
__global__ void __launch_bounds__(kNormThreads)
    rmsnorm_kernel1(const float* __restrict__ x, int64_t dim, const void* __restrict__ w, float eps,
                    float* __restrict__ out) {
  const int64_t row = blockIdx.x;
  const float* xr = x + row * dim;
  float* o = out + row * dim;
  double ss = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double a = xr[i];
    ss += a * a;
  }
  ss = block_reduce_sum(ss);
  // As the CPU: float64 mean + eps (eps promoted), float64 sqrt and division, then to float32.
  const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(dim) + eps));
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
    o[i] = __fmul_rn(__fmul_rn(xr[i], scale), load_as_f32_dev(w, WT, i));
}

template <DType WT>
void rmsnorm_launch(const float* x, int64_t rows, int64_t dim, const void* w, float eps, float* out,
                    cudaStream_t s) {
  DIFFLM_LAUNCH(rmsnorm_kernel1<WT>, static_cast<unsigned>(rows), kNormThreads, 0, s, x, dim, w,
                eps, out);
  CUDA_CHECK_LAUNCH("rmsnorm_kernel1");
}

}  // namespace

void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
             float* out, Stream s) {
  CUDA_REQUIRE(rows >= 0 && dim > 0, "rmsnorm: bad shape");
  CUDA_REQUIRE(rows <= 0x7fffffff, "rmsnorm: too many rows for one launch");
  if (rows == 0) return;
  const cudaStream_t st = to_stream(s);
  switch (wt) {
    case DType::F32: rmsnorm_launch<DType::F32>(x, rows, dim, w, eps, out, st); break;
    case DType::F16: rmsnorm_launch<DType::F16>(x, rows, dim, w, eps, out, st); break;
    case DType::BF16: rmsnorm_launch<DType::BF16>(x, rows, dim, w, eps, out, st); break;
  }
}

}  // namespace cuda
}  // namespace difflm
