#include "block_cache.h"

#include <algorithm>

namespace difflm {

size_t BlockCache::round(size_t bytes) {
  if (bytes <= 4096) return bytes <= 512 ? 512 : (bytes + 511) / 512 * 512;
  size_t top = 4096;  // the largest power of two <= bytes
  while (top <= bytes / 2) top *= 2;
  const size_t unit = std::min(top / 8, size_t(2) << 20);
  return (bytes + unit - 1) / unit * unit;
}

BlockCache::Block BlockCache::take(size_t bytes) {
  const size_t want = round(bytes);
  auto it = free_.lower_bound(want);
  if (it == free_.end() || it->first >= 2 * want) return {};
  const Block b{it->second, it->first};
  bytes_ -= it->first;
  free_.erase(it);
  return b;
}

void BlockCache::put(void* p, size_t bytes) {
  free_.emplace(bytes, p);
  bytes_ += bytes;
}

}  // namespace difflm
