#include "peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "cpu_features.h"
#include "thread_pool.h"
#include "x86_intrinsics.h"

namespace difflm {

namespace {

// 12 independent accumulator chains hide the FMA latency (4 cycles x up to 2 ports + slack).
constexpr int kChains = 12;
constexpr int64_t kInner = 1000;

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) double fma512_loop(int64_t reps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.0001f);
  for (int64_t r = 0; r < reps; ++r)
    for (int64_t i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) double fma256_loop(int64_t reps) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.0001f);
  for (int64_t r = 0; r < reps; ++r)
    for (int64_t i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) double bf16dot_loop(int64_t reps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512i a = _mm512_set1_epi16(0x3f80), b = _mm512_set1_epi16(0x3a83);  // 1, ~0.001
  for (int64_t r = 0; r < reps; ++r)
    for (int64_t i = 0; i < kInner; ++i)
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbf16_ps(acc[c], (__m512bh)a, (__m512bh)b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}
#endif

// Flops of one call of the loop above with `reps` repetitions.
double loop_flops(PeakKind kind, int64_t reps, int lanes) {
  const double per_instr = kind == PeakKind::Bf16Dot ? 4.0 * lanes : 2.0 * lanes;
  return per_instr * kChains * kInner * static_cast<double>(reps);
}

}  // namespace

double measure_peak_gflops(PeakKind kind, ThreadPool& pool, double ms) {
#if defined(__x86_64__)
  const CpuFeatures& f = cpu_features();
  double (*loop)(int64_t) = nullptr;
  int lanes = 0;
  if (kind == PeakKind::Bf16Dot) {
    if (!f.avx512bf16) return 0;
    loop = bf16dot_loop, lanes = 16;
  } else if (f.avx512f) {
    loop = fma512_loop, lanes = 16;
  } else if (f.avx2 && f.fma) {
    loop = fma256_loop, lanes = 8;
  } else {
    return 0;
  }
  // Calibrate the repetitions on one thread, then run them on all threads at once.
  int64_t reps = 1;
  volatile double sink = 0;
  for (;;) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + loop(reps);
    double el =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (el > ms / 4 || reps > (int64_t(1) << 30)) {
      reps = static_cast<int64_t>(reps * (ms / el)) + 1;
      break;
    }
    reps *= 2;
  }
  const int threads = pool.threads();
  auto t0 = std::chrono::steady_clock::now();
  pool.run(threads, [&](int64_t) { sink = sink + loop(reps); });
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return loop_flops(kind, reps, lanes) * threads / sec / 1e9;
#else
  (void)kind, (void)pool, (void)ms;
  return 0;
#endif
}

namespace {

// Sum of 64-bit words, in 8 lanes so that it vectorizes (AVX-512 or AVX2 chosen at load).
__attribute__((target_clones("avx512f", "avx2", "default"))) uint64_t sum_words(const uint64_t* p,
                                                                                size_t n) {
  uint64_t lane[8] = {};
  for (size_t i = 0; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += p[i + l];
  uint64_t s = 0;
  for (const uint64_t x : lane) s += x;
  return s;
}

}  // namespace

double measure_read_gbps(ThreadPool& pool, size_t bytes, double ms) {
  const size_t words = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(words, 1);  // written once, so every page is really there
  const int64_t parts = pool.threads();
  const size_t per = words / static_cast<size_t>(parts);
  std::vector<uint64_t> sums(static_cast<size_t>(parts));
  double best = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(ms);
  do {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(parts, [&](int64_t t) { sums[t] += sum_words(buf.data() + t * per, per); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(per * parts * sizeof(uint64_t)) / s / 1e9);
  } while (std::chrono::steady_clock::now() < end);
  volatile uint64_t sink = sums[0];  // keep the sums alive
  (void)sink;
  return best;
}

}  // namespace difflm
