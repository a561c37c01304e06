// GEMM kernels of every SIMD path this CPU has, for every weight dtype, against a plain
// double-precision reference on awkward sizes.
#include <cstdio>
#include <cstring>

#include "cpu/gemm.h"
#include "cpu/thread_pool.h"
#include "dtype.h"
#include "errors.h"
#include "test.h"

using namespace difflm;

namespace {

struct Weights {
  std::vector<uint16_t> half;
  std::vector<float> f32;
  WeightMatrix view;
};

Weights make_weights(DType dt, int64_t N, int64_t K, std::mt19937& rng) {
  Weights w;
  w.f32 = difflm_test::random_floats(static_cast<size_t>(N * K), rng);
  if (dt == DType::F32) {
    w.view = {w.f32.data(), dt, N, K};
  } else {
    w.half.resize(w.f32.size());
    for (size_t i = 0; i < w.f32.size(); ++i)
      w.half[i] = dt == DType::BF16 ? f32_to_bf16(w.f32[i]) : f32_to_f16(w.f32[i]);
    w.view = {w.half.data(), dt, N, K};
  }
  return w;
}

// C = A . W^T in double, with A optionally rounded to bf16 first (what the BF16-dot path does).
std::vector<float> reference(const std::vector<float>& A, int64_t M, const WeightMatrix& W,
                             bool round_a) {
  std::vector<float> C(static_cast<size_t>(M * W.rows));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < W.rows; ++n) {
      double s = 0;
      for (int64_t k = 0; k < W.cols; ++k) {
        float a = A[m * W.cols + k];
        if (round_a) a = bf16_to_f32(f32_to_bf16(a));
        s += static_cast<double>(a) * load_as_f32(W.data, W.dtype, n * W.cols + k);
      }
      C[m * W.rows + n] = static_cast<float>(s);
    }
  return C;
}

}  // namespace

TEST(gemm_every_path_dtype_and_awkward_shape) {
  std::mt19937 rng(1234);
  ThreadPool pool(3);
  const int64_t Ms[] = {1, 3, 5, 17, 67};
  const int64_t Ns[] = {1, 7, 33, 65};
  const int64_t Ks[] = {1, 15, 17, 63, 100, 257};
  for (GemmPath path : gemm_paths_available()) {
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      double worst = 0;
      for (int64_t M : Ms)
        for (int64_t N : Ns)
          for (int64_t K : Ks) {
            Weights w = make_weights(dt, N, K, rng);
            auto A = difflm_test::random_floats(static_cast<size_t>(M * K), rng);
            const bool round_a = path == GemmPath::Avx512Bf16 && dt == DType::BF16;
            auto ref = reference(A, M, w.view, round_a);
            std::vector<float> C(ref.size(), NAN);  // poisoned: every entry must be written
            gemm(A.data(), M, w.view, C.data(), (M * N) % 2 ? &pool : nullptr, path);
            const double err = difflm_test::rel_l2(C, ref);
            worst = std::max(worst, err);
            CHECK_MSG(err <= 1e-5, gemm_path_name(path)
                                       << " " << dtype_name(dt) << " M=" << M << " N=" << N
                                       << " K=" << K << " rel err " << err);
          }
      std::printf("     gemm %-10s %-4s worst rel L2 %.2e\n", gemm_path_name(path), dtype_name(dt),
                  worst);
    }
  }
}

TEST(gemm_rejects_unavailable_path_or_runs_it) {
  // Every path either runs (listed as available) or is refused with a clear error.
  const auto avail = gemm_paths_available();
  std::vector<float> A(4, 1.f), Wd(4, 1.f), C(1);
  WeightMatrix W{Wd.data(), DType::F32, 1, 4};
  for (GemmPath p : {GemmPath::Portable, GemmPath::Avx2, GemmPath::Avx512, GemmPath::Avx512Bf16}) {
    if (std::find(avail.begin(), avail.end(), p) != avail.end()) {
      gemm(A.data(), 1, W, C.data(), nullptr, p);
      CHECK(C[0] == 4.f);
    } else {
      CHECK_THROWS(gemm(A.data(), 1, W, C.data(), nullptr, p), ErrorCode::InvalidArgument,
                   "not available");
    }
  }
  CHECK(avail.front() == GemmPath::Portable);
}

TEST(gemm_large_k_accumulates_in_float32) {
  // K = 4099 ones: exact in float32 accumulation on every path for f32/bf16/f16 weights.
  const int64_t K = 4099;
  std::vector<float> A(K, 1.f), Wd(K, 1.f), C(1);
  std::vector<uint16_t> Wh(K, f32_to_bf16(1.f));
  for (GemmPath p : gemm_paths_available()) {
    gemm(A.data(), 1, WeightMatrix{Wd.data(), DType::F32, 1, K}, C.data(), nullptr, p);
    CHECK_MSG(C[0] == 4099.f, gemm_path_name(p) << " got " << C[0]);
    gemm(A.data(), 1, WeightMatrix{Wh.data(), DType::BF16, 1, K}, C.data(), nullptr, p);
    CHECK_MSG(C[0] == 4099.f, gemm_path_name(p) << " bf16 got " << C[0]);
  }
}

TEST(gemm_row_results_do_not_depend_on_the_batch) {
  // A row's output is bit-for-bit the same whether it is multiplied alone (the GEMV path), in a
  // full register tile or in an edge tile: a prompt's logits do not change with the batch or
  // the window it is computed in. K spans a K-chunk boundary and leaves a tail (K % 16 = 11,
  // K % 8 = 3: the AVX-512 masked tail and the AVX2 scalar one).
  std::mt19937 rng(99);
  const int64_t M = 13, N = 37, K = 4203;
  for (GemmPath path : gemm_paths_available())
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      Weights w = make_weights(dt, N, K, rng);
      auto A = difflm_test::random_floats(static_cast<size_t>(M * K), rng);
      std::vector<float> all(static_cast<size_t>(M * N)), one(static_cast<size_t>(N));
      gemm(A.data(), M, w.view, all.data(), nullptr, path);
      for (int64_t m = 0; m < M; ++m) {
        gemm(A.data() + m * K, 1, w.view, one.data(), nullptr, path);
        int64_t differ = 0;
        for (int64_t n = 0; n < N; ++n) differ += one[n] != all[m * N + n];
        CHECK_MSG(differ == 0, gemm_path_name(path) << " " << dtype_name(dt) << " row " << m << ": "
                                                    << differ << " outputs differ");
      }
    }
}

TEST(round_to_bf16_matches_the_scalar_rounding) {
  // Every vector lane and the scalar tail round as f32_to_bf16: ties to even, subnormals kept
  // (not flushed), infinities, NaNs made quiet with their sign and payload's top bits.
  std::mt19937 rng(5);
  std::vector<uint32_t> bits = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x00008000u,
                                0x00018000u, 0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x7f800000u,
                                0xff800000u, 0x7f800001u, 0xffc00000u, 0x7fbfffffu, 0x3f807fffu};
  for (int i = 0; i < 200000; ++i) bits.push_back(static_cast<uint32_t>(rng()));
  std::vector<float> src(bits.size());
  std::memcpy(src.data(), bits.data(), bits.size() * sizeof(float));
  ThreadPool pool(2);
  for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
    std::vector<uint16_t> dst(src.size(), 0x1234);
    round_to_bf16(src.data(), dst.data(), static_cast<int64_t>(src.size()), p);
    int64_t differ = 0;
    for (size_t i = 0; i < src.size(); ++i) differ += dst[i] != f32_to_bf16(src[i]);
    CHECK_MSG(differ == 0, differ << " of " << src.size() << " differ");
  }
}
