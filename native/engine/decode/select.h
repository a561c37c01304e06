// Which masked positions a denoising step commits (notes masked_dlm.md §1, §1.1, §4.2): the k most
// confident (LLaDA's fixed schedule), every one reaching a confidence threshold (Fast-dLLM's
// threshold mode), or a rank-dependent threshold (factor mode). Every rule commits at least the
// single most confident eligible position, so a step never stalls.
// CUDA twins: cuda::select_commit (top-k) and cuda::select_threshold (cuda/select.cu).
#pragma once

#include <cstdint>
#include <vector>

namespace difflm {

struct CommitRule {
  enum class Kind { TopK, Threshold, Factor };
  Kind kind = Kind::TopK;
  int64_t k = 0;           // TopK: how many (0 commits nothing)
  double threshold = 0.9;  // Threshold: commit confidence >= threshold (Fast-dLLM rejects only <)
  // Factor: the position of rank r (1-based) is committed while its confidence reaches
  // 1 - factor / (r + 1), the ranks before it having been committed. Fast-dLLM's own factor mode
  // also commits everything when only the last rank fails; this one stops at the first failure.
  double factor = 1.0;
  // Threshold: at most this many (-1: no cap; 0 commits nothing). Dream's confidence_threshold
  // looks at its budget's most confident positions only.
  int64_t cap = -1;

  static CommitRule top_k(int64_t k) { return {Kind::TopK, k, 0.9, 1.0, -1}; }
  static CommitRule at_threshold(double t) { return {Kind::Threshold, 0, t, 1.0, -1}; }
  static CommitRule by_factor(double f) { return {Kind::Factor, 0, 0.9, f, -1}; }
  static CommitRule top_k_at_threshold(int64_t k, double t) {
    return {Kind::Threshold, 0, t, 1.0, k};
  }
};

// How many of the first n confidences of a ranking (descending) the rule commits.
int64_t commit_count(const double* ranked, int64_t n, const CommitRule& rule);

// The positions i in [0, n) with eligible[i] != 0 that the rule commits, by rank (confidence
// descending, lower position first on ties). Empty iff nothing is eligible or the rule is top-0.
// Confidences must not be NaN.
std::vector<int64_t> select_commits(const double* confidence, const uint8_t* eligible, int64_t n,
                                    const CommitRule& rule);

}  // namespace difflm
