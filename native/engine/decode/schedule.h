// LLaDA's commit schedule (generate.py get_num_transfer_tokens): `masked` tokens over `steps`
// steps, base = masked / steps each, the remainder added to the first steps.
#pragma once

#include <cstdint>
#include <vector>

namespace difflm {

inline std::vector<int64_t> num_transfer_tokens(int64_t masked, int64_t steps) {
  std::vector<int64_t> k(static_cast<size_t>(steps), masked / steps);
  for (int64_t t = 0; t < masked % steps; ++t) ++k[static_cast<size_t>(t)];
  return k;
}

}  // namespace difflm
