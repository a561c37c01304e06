// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): every draw is a pure
// function of (seed, stream, step, position, index), so results depend on neither thread count
// nor launch shape, and the CPU and CUDA backends draw the very same numbers.
#pragma once

#include <cstdint>

#include "hd.h"

namespace difflm {

// Gumbel: token draws; Remask: LLaDA's random remasking; Transfer: Dream's origin reveals;
// Select: Dream's alg_temp draw of positions.
enum class RngStream : uint32_t { Gumbel = 1, Remask = 2, Transfer = 3, Select = 4 };

struct Philox4x32 {
  uint32_t v[4];
};

DIFFLM_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter `c` with key (k0, k1).
DIFFLM_HD Philox4x32 philox4x32(Philox4x32 c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c.v[0], &hi0, &lo0);
    philox_mulhilo(0xCD9E8D57u, c.v[2], &hi1, &lo1);
    c = Philox4x32{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// 53 random bits as a double in the open interval (0, 1): (bits + 1/2) / 2^53, except that the
// top value, which rounds to 1.0, becomes the largest double below 1 (1 - 2^-53). So
// 2^-54 <= u <= 1 - 2^-53, and a Gumbel score c - T log(-log u) is at most c + 36.74 T.
DIFFLM_HD double unit_interval(uint64_t bits53) {
  const double u = (static_cast<double>(bits53) + 0.5) * (1.0 / 9007199254740992.0);
  return u < 1.0 ? u : 1.0 - 1.0 / 9007199254740992.0;
}

// An upper bound of -log(-log(u)) over every u that unit_interval returns (36.74, rounded up
// with room for the roundings of the score), so a token whose c + kGumbelNoiseMax * T is below
// the best score so far can be skipped without drawing its noise.
constexpr double kGumbelNoiseMax = 37.0;

// An upper bound of the Gumbel noise -log(-log u) of this u, which grows with u: 1, 2, 4 or 8
// below thresholds u_t = exp(-exp(-t)) lowered by 1e-12 (so the noise is below t - 2e-12 there,
// far beyond log's rounding), else kGumbelNoiseMax. Most draws get 1, 2 or 4, so a token whose
// logit is further than that below the best score so far needs no logarithms.
DIFFLM_HD double gumbel_noise_bound(double u) {
  return u <= 0.6922006275546542   ? 1.0
         : u <= 0.8734230184922432 ? 2.0
         : u <= 0.9818510730606846 ? 4.0
         : u <= 0.9996645936323938 ? 8.0
                                   : kGumbelNoiseMax;
}

// A uniform double in the open interval (0, 1) from 53 random bits. The key is the seed; the
// counter holds (step, position, index, stream).
DIFFLM_HD double uniform01(uint64_t seed, RngStream stream, uint64_t step, uint64_t pos,
                           uint64_t index) {
  const Philox4x32 ctr{{static_cast<uint32_t>(step), static_cast<uint32_t>(pos),
                        static_cast<uint32_t>(index),
                        static_cast<uint32_t>(stream) << 24 ^ static_cast<uint32_t>(step >> 32)}};
  const Philox4x32 r =
      philox4x32(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 21) ^ (r.v[1] >> 11);  // 53 bits
  return unit_interval(bits & ((uint64_t(1) << 53) - 1));
}

}  // namespace difflm
