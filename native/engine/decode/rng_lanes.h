// Eight uniform01 draws side by side (CPU): the Gumbel loop of sample_row() needs one Philox draw
// per token it cannot rule out, and where many tokens of a run need one (flat logits, a small
// model), computing eight in vector lanes costs far fewer instructions than one at a time.
#pragma once

#include <cstdint>

#include "../rng.h"

namespace difflm {

constexpr int kRngLanes = 8;

// out[l] = uniform01(seed, stream, step, pos, index0 + l) for l < kRngLanes, bit for bit
// (AVX-512 or AVX2 where the CPU has them, else one draw at a time).
void uniform01_lanes(uint64_t seed, RngStream stream, uint64_t step, uint64_t pos, uint64_t index0,
                     double* out);

}  // namespace difflm
