#include "select.h"

#include <algorithm>

namespace difflm {

int64_t commit_count(const double* ranked, int64_t n, const CommitRule& rule) {
  if (n <= 0) return 0;
  int64_t keep = 0;
  switch (rule.kind) {
    case CommitRule::Kind::TopK: return std::min(rule.k, n);
    case CommitRule::Kind::Threshold:
      while (keep < n && ranked[keep] >= rule.threshold) ++keep;
      break;
    case CommitRule::Kind::Factor:
      // rank r = keep + 1 needs 1 - factor / (r + 1); the first rank is always committed.
      keep = 1;
      while (keep < n && ranked[keep] >= 1.0 - rule.factor / static_cast<double>(keep + 2)) ++keep;
      break;
  }
  keep = std::max<int64_t>(keep, 1);
  return rule.cap >= 0 ? std::min(keep, rule.cap) : keep;
}

std::vector<int64_t> select_commits(const double* confidence, const uint8_t* eligible, int64_t n,
                                    const CommitRule& rule) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < n; ++i)
    if (eligible[i]) order.push_back(i);
  auto by_rank = [&](int64_t a, int64_t b) {
    if (confidence[a] != confidence[b]) return confidence[a] > confidence[b];
    return a < b;
  };
  if (rule.kind == CommitRule::Kind::TopK) {
    const auto k =
        static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(rule.k, 0), order.size()));
    std::partial_sort(order.begin(), order.begin() + k, order.end(), by_rank);
    order.resize(k);
    return order;
  }
  std::sort(order.begin(), order.end(), by_rank);
  std::vector<double> ranked(order.size());
  for (size_t j = 0; j < order.size(); ++j) ranked[j] = confidence[order[j]];
  order.resize(
      static_cast<size_t>(commit_count(ranked.data(), static_cast<int64_t>(ranked.size()), rule)));
  return order;
}

}  // namespace difflm
