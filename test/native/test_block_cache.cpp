// The cache of freed device blocks (block_cache.h), with plain addresses standing in for device
// memory.
#include <algorithm>
#include <vector>

#include "block_cache.h"
#include "test.h"

using namespace difflm;

namespace {
void* addr(uintptr_t a) {
  return reinterpret_cast<void*>(a);
}
}  // namespace

TEST(block_cache_rounds_requests_into_shared_sizes) {
  CHECK(BlockCache::round(0) == 512);
  CHECK(BlockCache::round(1) == 512);
  CHECK(BlockCache::round(512) == 512);
  CHECK(BlockCache::round(513) == 1024);
  CHECK(BlockCache::round(4096) == 4096);
  CHECK(BlockCache::round(4097) == 4096 + 512);
  CHECK(BlockCache::round(size_t(1) << 20) == size_t(1) << 20);
  CHECK(BlockCache::round((size_t(1) << 20) + 1) == (size_t(1) << 20) + (size_t(1) << 17));
  // 14155776 bytes (288 x 12288 floats): 2^23 <= n < 2^24, unit 2^20 -> 14 MiB
  CHECK(BlockCache::round(14155776) == size_t(14) << 20);
  // 70 GB: a multiple of 2 MiB, so a large allocation never asks for much more than it needs
  CHECK(BlockCache::round(70000000000) ==
        70000000000 / (size_t(2) << 20) * (size_t(2) << 20) + (size_t(2) << 20));
  for (size_t n = 1; n < (size_t(1) << 40); n = n * 3 + 7) {
    const size_t r = BlockCache::round(n);
    CHECK_MSG(r >= n && r % 512 == 0 && (n < 4096 || r - n < n / 8) && r - n < (size_t(2) << 20),
              n << " -> " << r);
  }
}

TEST(block_cache_reuses_the_smallest_fitting_block_and_counts_bytes) {
  BlockCache c;
  CHECK(c.take(100).p == nullptr);  // empty
  c.put(addr(0x1000), 4096);
  c.put(addr(0x2000), 1024);
  c.put(addr(0x3000), 1024);
  CHECK(c.bytes() == 6144 && c.blocks() == 3);
  BlockCache::Block b = c.take(600);  // round: 1024; the two 1024-byte blocks fit
  CHECK(b.bytes == 1024 && (b.p == addr(0x2000) || b.p == addr(0x3000)));
  CHECK(c.bytes() == 5120 && c.blocks() == 2);
  // 3000 -> 3072: the 4096-byte block is less than twice that
  b = c.take(3000);
  CHECK(b.p == addr(0x1000) && b.bytes == 4096);
  CHECK(c.take(2000).p == nullptr);  // 2048 wanted, only 1024 left
  CHECK(c.bytes() == 1024 && c.blocks() == 1);
}

TEST(block_cache_never_hands_a_large_block_to_a_small_request) {
  BlockCache c;
  c.put(addr(0x1000), size_t(64) << 20);
  CHECK(c.take(1000).p == nullptr);
  CHECK(c.take(size_t(31) << 20).p == nullptr);  // 32 MiB wanted: 64 is not less than twice
  CHECK(c.take(size_t(33) << 20).p == addr(0x1000));
  CHECK(c.bytes() == 0 && c.blocks() == 0);
}

TEST(block_cache_clear_frees_every_block_once) {
  BlockCache c;
  c.put(addr(0x1000), 512);
  c.put(addr(0x2000), 512);
  c.put(addr(0x3000), size_t(2) << 20);
  std::vector<void*> freed;
  c.clear([&](void* p) { freed.push_back(p); });
  CHECK(freed.size() == 3);
  std::sort(freed.begin(), freed.end());
  CHECK(freed[0] == addr(0x1000) && freed[1] == addr(0x2000) && freed[2] == addr(0x3000));
  CHECK(c.bytes() == 0 && c.blocks() == 0 && c.take(1).p == nullptr);
}
