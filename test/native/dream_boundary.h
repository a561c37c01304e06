// A row on which Dream's top-p rule and Hugging Face's differ (test helper, C++ tests and the
// GPU check). They differ only when p times the total integer weight W is a whole number that
// the weight before a token equals: Dream keeps that token (mass before <= p), HF removes it
// (< p). Logits {0, -2^-24, -60 ...} have the exact weights 2^40 and 2^40 - 2^16 (sampling.h),
// so p near 2^40 / W puts the boundary on the second token; the p found is returned.
#pragma once

#include <cmath>
#include <vector>

#include "decode/sampling.h"

namespace difflm_test {

struct TopPBoundary {
  std::vector<float> logits;
  double p = 0;  // 0: none found
};

inline TopPBoundary dream_top_p_boundary(int vocab) {
  TopPBoundary b;
  b.logits.assign(vocab, -60.f);
  b.logits[0] = 0.f;
  b.logits[1] = -std::ldexp(1.f, -24);
  const double w = std::ldexp(1.0, 41) - std::ldexp(1.0, 16);
  double p = std::ldexp(1.0, 40) / w;
  p = std::nextafter(p, 0.0);
  p = std::nextafter(p, 0.0);
  for (int i = 0; i < 5; ++i, p = std::nextafter(p, 1.0)) {
    std::vector<float> dream = b.logits, hf = b.logits;
    difflm::apply_dream_top_p(dream.data(), vocab, p);
    difflm::TopKTopP f;
    f.top_p = p;
    difflm::apply_top_k_top_p(hf.data(), vocab, 1.0, f);
    if (dream[1] == b.logits[1] && hf[1] != b.logits[1]) {
      b.p = p;
      return b;
    }
  }
  return b;
}

}  // namespace difflm_test
