// One sample_rows configuration (top-k/top-p included) against its CPU twin on the same logits:
// tokens exact, confidence within 1e-9 relative, the in-place logit writes bit-exact. With
// `committed` (one flag per row), the flagged rows' canvas positions hold a token instead of the
// mask: the kernel must skip them (tokens, confidence and logits untouched), as the CPU does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace difflm_gpu {

void check_sample_rows(const std::vector<float>& logits, int64_t rows, int64_t vocab,
                       const difflm::cuda::SampleParams& p, const std::string& what,
                       const std::vector<uint8_t>& committed = {});

}  // namespace difflm_gpu
