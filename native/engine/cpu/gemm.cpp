// GEMM dispatch and the portable kernel; the SIMD kernels live in gemm_avx2.cpp and
// gemm_avx512.cpp and are compiled with function-level target attributes, so one binary
// runs on any x86-64 and uses what the CPU has.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "../errors.h"
#include "cpu_features.h"
#include "thread_pool.h"

namespace difflm {

const char* gemm_path_name(GemmPath p) {
  switch (p) {
    case GemmPath::Portable: return "portable";
    case GemmPath::Avx2: return "avx2";
    case GemmPath::Avx512: return "avx512";
    case GemmPath::Avx512Bf16: return "avx512bf16";
  }
  return "?";
}

std::vector<GemmPath> gemm_paths_available() {
  std::vector<GemmPath> paths{GemmPath::Portable};
#if defined(__x86_64__)
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) paths.push_back(GemmPath::Avx2);
  if (f.avx512f && f.fma && f.f16c) paths.push_back(GemmPath::Avx512);
  if (f.avx512bf16 && f.fma && f.f16c) paths.push_back(GemmPath::Avx512Bf16);
#endif
  return paths;
}

GemmPath gemm_best_path() {
  static const GemmPath best = gemm_paths_available().back();
  return best;
}

void gemm_block_portable(const GemmBlock& b) {
  // Each weight row is widened to float32 once, then dotted with every activation row in plain
  // loops the compiler vectorises for the baseline ISA of any CPU (SSE2, NEON, ...).
  const WeightMatrix& W = *b.W;
  std::vector<float> wrow(static_cast<size_t>(b.K));
  for (int64_t n = b.n0; n < b.n1; ++n) {
    const char* src = static_cast<const char*>(W.data) + n * b.K * dtype_size(W.dtype);
    for (int64_t k = 0; k < b.K; ++k) wrow[k] = load_as_f32(src, W.dtype, k);
    for (int64_t m = b.m0; m < b.m1; ++m) {
      const float* a = b.A + m * b.K;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= b.K; k += 8)
        for (int j = 0; j < 8; ++j) acc[j] += a[k + j] * wrow[k + j];
      float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; k < b.K; ++k) sum += a[k] * wrow[k];
      b.C[m * b.N + n] = sum;
    }
  }
}

namespace {

using BlockFn = void (*)(const GemmBlock&);

BlockFn block_fn(GemmPath path, DType wtype) {
  switch (path) {
    case GemmPath::Portable: return gemm_block_portable;
    case GemmPath::Avx2: return gemm_block_avx2;
    case GemmPath::Avx512: return gemm_block_avx512;
    case GemmPath::Avx512Bf16:
      // The BF16 dot applies to bf16 weights only; other dtypes use the AVX-512 kernels.
      return wtype == DType::BF16 ? gemm_block_avx512bf16 : gemm_block_avx512;
  }
  return gemm_block_portable;
}

}  // namespace

GemmPath gemm_default_path() {
  static const GemmPath chosen = [] {
    const char* env = std::getenv("DIFFLM_GEMM_PATH");
    if (env)
      for (GemmPath p : gemm_paths_available())
        if (std::string(env) == gemm_path_name(p)) return p;
    return gemm_best_path();
  }();
  return chosen;
}

void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C, ThreadPool* pool) {
  gemm(A, M, W, C, pool, gemm_default_path());
}

void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C, ThreadPool* pool,
          GemmPath path) {
  const auto avail = gemm_paths_available();
  if (std::find(avail.begin(), avail.end(), path) == avail.end())
    throw EngineError(ErrorCode::InvalidArgument,
                      std::string("GEMM path ") + gemm_path_name(path) + " is not available");
  const int64_t N = W.rows, K = W.cols;
  if (M <= 0 || N <= 0) return;
  BlockFn fn = block_fn(path, W.dtype);
  // A rounded to bf16, in a buffer kept per calling thread: a fresh allocation per call cost
  // its page faults every time (4 % of the built-in model's generation).
  thread_local std::vector<uint16_t> a16_store;
  uint16_t* a16 = nullptr;
  if (fn == gemm_block_avx512bf16) {
    if (a16_store.size() < static_cast<size_t>(M * K)) a16_store.resize(static_cast<size_t>(M * K));
    a16 = a16_store.data();
    round_to_bf16(A, a16, M * K, pool);
  }
  // Blocks of 64 activation rows by 32 weight rows: a weight block stays in L1/L2 while the
  // activation rows stream past it; enough blocks to keep every thread busy.
  const int64_t mb = 64, nb = 32;
  const int64_t m_blocks = (M + mb - 1) / mb, n_blocks = (N + nb - 1) / nb;
  auto run_block = [&](int64_t t) {
    const int64_t im = t % m_blocks, in = t / m_blocks;
    GemmBlock b{A,
                a16,
                &W,
                C,
                M,
                N,
                K,
                im * mb,
                std::min(M, (im + 1) * mb),
                in * nb,
                std::min(N, (in + 1) * nb)};
    fn(b);
  };
  if (pool)
    pool->run(m_blocks * n_blocks, run_block);
  else
    for (int64_t t = 0; t < m_blocks * n_blocks; ++t) run_block(t);
}

}  // namespace difflm

namespace difflm {

void round_to_bf16(const float* src, uint16_t* dst, int64_t n, ThreadPool* pool) {
#if defined(__x86_64__)
  static const bool vec = cpu_features().avx512f;  // with BW (cpu_features.h)
#else
  constexpr bool vec = false;
#endif
  auto part = [&](int64_t i0, int64_t i1) {
    if (vec) {
      round_to_bf16_avx512(src + i0, dst + i0, i1 - i0);
    } else {
      for (int64_t i = i0; i < i1; ++i) dst[i] = f32_to_bf16(src[i]);
    }
  };
  // Parts of 64 Ki elements (a multiple of 16, so only the last one has a scalar tail).
  const int64_t chunk = int64_t(1) << 16, parts = (n + chunk - 1) / chunk;
  auto run_part = [&](int64_t t) { part(t * chunk, std::min(n, (t + 1) * chunk)); };
  if (pool && parts > 1)
    pool->run(parts, run_part);
  else
    for (int64_t t = 0; t < parts; ++t) run_part(t);
}

}  // namespace difflm
