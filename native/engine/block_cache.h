// Freed blocks of device memory kept for reuse by the backend that made them. A GPU backend
// that runs every kernel on one stream can hand a freed block to the next allocation at once:
// work queued later on the stream runs after the work that last used the block. This replaces a
// cudaFree (which waits for the whole device) and a cudaMalloc per buffer with a map lookup;
// a forward allocates about ten buffers, so every decoding step did that ten times.
#pragma once

#include <cstddef>
#include <map>

namespace difflm {

class BlockCache {
 public:
  struct Block {
    void* p = nullptr;
    size_t bytes = 0;
  };

  // The size a request of `bytes` is served with, so that requests of nearby sizes share blocks:
  // a multiple of 512 bytes up to 4 KiB, above that of an eighth of the largest power of two
  // not above `bytes`, at most 2 MiB (so at most 12.5 % and 2 MiB more than asked for).
  static size_t round(size_t bytes);

  // Removes and returns the smallest cached block of at least round(bytes) and less than twice
  // that (so a small request never pins a large block); {nullptr, 0} when there is none.
  Block take(size_t bytes);
  // Caches a block of `bytes` (its size as allocated, a round() value).
  void put(void* p, size_t bytes);
  // Hands every cached block to `free_block` (which must not throw) and empties the cache;
  // allocates nothing, so owners may call it from destructors.
  template <class FreeBlock>
  void clear(FreeBlock free_block) noexcept {
    for (const auto& kv : free_) free_block(kv.second);
    free_.clear();
    bytes_ = 0;
  }
  // Bytes held in cached blocks.
  size_t bytes() const { return bytes_; }
  size_t blocks() const { return free_.size(); }

 private:
  std::multimap<size_t, void*> free_;  // size -> block
  size_t bytes_ = 0;
};

}  // namespace difflm
