#include "select.h"

#include <algorithm>

namespace difflm {

std::vector<int64_t> select_threshold(const double* confidence, const uint8_t* eligible, int64_t n,
                                      double threshold) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < n; ++i)
    if (eligible[i]) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (confidence[a] != confidence[b]) return confidence[a] > confidence[b];
    return a < b;
  });
  // Those reaching the threshold are a prefix of the ranking; keep at least the first.
  size_t keep = 0;
  while (keep < order.size() && confidence[order[keep]] >= threshold) ++keep;
  order.resize(std::min(order.size(), std::max<size_t>(keep, 1)));
  return order;
}

}  // namespace difflm
