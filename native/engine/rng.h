// Counter-based random numbers: every draw is a pure function of (seed, stream, step, position,
// index), so results do not depend on thread count, batch shape or launch order.
#pragma once

#include <cstdint>

namespace difflm {

enum class RngStream : uint64_t { Gumbel = 1, Remask = 2 };

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A uniform double in the open interval (0, 1).
inline double uniform01(uint64_t seed, RngStream stream, uint64_t step, uint64_t pos,
                        uint64_t index) {
  uint64_t h = splitmix64(seed ^ (static_cast<uint64_t>(stream) << 56));
  h = splitmix64(h ^ step);
  h = splitmix64(h ^ pos);
  h = splitmix64(h ^ index);
  return (static_cast<double>(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

}  // namespace difflm
