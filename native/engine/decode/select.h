// Threshold selection for parallel decoding (Fast-dLLM's threshold mode, notes masked_dlm.md
// §1.1): among the eligible positions of a block, commit every one whose confidence reaches the
// threshold, and always at least the single most confident one, so a step never stalls.
// CUDA twin: cuda::select_threshold (cuda/select.cu).
#pragma once

#include <cstdint>
#include <vector>

namespace difflm {

// Positions i in [0, n) with eligible[i] != 0 and confidence[i] >= threshold (Fast-dLLM drops a
// position only when its confidence is < threshold), plus the most confident eligible position
// when none reaches it. Ties rank the lower position first; the result lists the committed
// positions by rank (confidence descending, position ascending). Empty iff nothing is eligible.
// Confidences must not be NaN. This is not Fast-dLLM's factor mode, whose cut at the first
// failing rank commits everything when only the last position fails (see the notes).
std::vector<int64_t> select_threshold(const double* confidence, const uint8_t* eligible, int64_t n,
                                      double threshold);

}  // namespace difflm
