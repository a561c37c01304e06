#include "rng_lanes.h"

#include "../cpu/cpu_features.h"
#include "../cpu/x86_intrinsics.h"

namespace difflm {

namespace {

constexpr uint64_t kMask53 = (uint64_t(1) << 53) - 1;

#if defined(__x86_64__)
// rng.h's philox4x32 on eight counters at once, one per 64-bit lane (values in the low 32 bits;
// VPMULUDQ gives the full 64-bit product of the low halves), then uniform01's 53 bits.
#define DIFFLM_PHILOX_LANES(ATTR, V, SET1, MUL, SRLI, SLLI, XOR, AND, LOADU, STOREU)   \
  ATTR void philox_lanes_##V(uint64_t seed, uint32_t w0, uint32_t w1, uint32_t w3,     \
                             uint64_t index0, uint64_t* bits) {                        \
    alignas(64) uint64_t idx[8];                                                       \
    for (int l = 0; l < 8; ++l) idx[l] = static_cast<uint32_t>(index0 + l);            \
    const auto lo32 = SET1(0xffffffffLL);                                              \
    const auto m0 = SET1(0xD2511F53LL), m1 = SET1(0xCD9E8D57LL);                       \
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32); \
    constexpr int kPer = sizeof(decltype(SET1(0))) / 8; /* lanes per register */       \
    for (int h = 0; h < 8; h += kPer) {                                                \
      auto c0 = SET1(w0), c1 = SET1(w1), c2 = LOADU(idx + h), c3 = SET1(w3);           \
      uint32_t a = k0, b = k1;                                                         \
      for (int round = 0; round < 10; ++round) {                                       \
        const auto p0 = MUL(c0, m0), p1 = MUL(c2, m1);                                 \
        c0 = XOR(XOR(SRLI(p1, 32), c1), SET1(a));                                      \
        c2 = XOR(XOR(SRLI(p0, 32), c3), SET1(b));                                      \
        c1 = AND(p1, lo32);                                                            \
        c3 = AND(p0, lo32);                                                            \
        a += 0x9E3779B9u;                                                              \
        b += 0xBB67AE85u;                                                              \
      }                                                                                \
      STOREU(bits + h, XOR(SLLI(c0, 21), SRLI(c1, 11)));                               \
    }                                                                                  \
  }

#define DIFFLM_LOADU512(p) _mm512_loadu_si512(p)
#define DIFFLM_STOREU512(p, v) _mm512_storeu_si512(p, v)
#define DIFFLM_SET1_512(x) _mm512_set1_epi64(static_cast<long long>(x))
DIFFLM_PHILOX_LANES(__attribute__((target("avx512f"))), avx512, DIFFLM_SET1_512, _mm512_mul_epu32,
                    _mm512_srli_epi64, _mm512_slli_epi64, _mm512_xor_si512, _mm512_and_si512,
                    DIFFLM_LOADU512, DIFFLM_STOREU512)

#define DIFFLM_LOADU256(p) _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
#define DIFFLM_STOREU256(p, v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v)
#define DIFFLM_SET1_256(x) _mm256_set1_epi64x(static_cast<long long>(x))
DIFFLM_PHILOX_LANES(__attribute__((target("avx2"))), avx2, DIFFLM_SET1_256, _mm256_mul_epu32,
                    _mm256_srli_epi64, _mm256_slli_epi64, _mm256_xor_si256, _mm256_and_si256,
                    DIFFLM_LOADU256, DIFFLM_STOREU256)
#endif

}  // namespace

void uniform01_lanes(uint64_t seed, RngStream stream, uint64_t step, uint64_t pos, uint64_t index0,
                     double* out) {
#if defined(__x86_64__)
  static const int isa = cpu_features().avx512f ? 2 : cpu_features().avx2 ? 1 : 0;
  if (isa > 0) {
    // The counter words as uniform01 builds them: (step, pos, index, stream << 24 ^ step >> 32).
    const uint32_t w0 = static_cast<uint32_t>(step), w1 = static_cast<uint32_t>(pos);
    const uint32_t w3 = static_cast<uint32_t>(stream) << 24 ^ static_cast<uint32_t>(step >> 32);
    uint64_t bits[kRngLanes];
    if (isa == 2)
      philox_lanes_avx512(seed, w0, w1, w3, index0, bits);
    else
      philox_lanes_avx2(seed, w0, w1, w3, index0, bits);
    for (int l = 0; l < kRngLanes; ++l) out[l] = unit_interval(bits[l] & kMask53);
    return;
  }
#endif
  for (int l = 0; l < kRngLanes; ++l)
    out[l] = uniform01(seed, stream, step, pos, index0 + static_cast<uint64_t>(l));
}

}  // namespace difflm
