#include "knn.h"

#include <cmath>
#include <limits>
#include <vector>

#include "thread_pool.h"

namespace difflm {

namespace {

// The score both backends maximise (see knn.h); written once so the two stay in step.
inline float knn_score(float dot, float norm, bool cosine) {
  return cosine ? dot / norm : 2.0f * dot - norm;
}

}  // namespace

void knn_round(const float* x, int64_t rows, int64_t dim, const void* E, DType et, int64_t vocab,
               const float* e_norms, bool cosine, int32_t* out, ThreadPool* pool) {
  // Rows of x are split over the pool; each chunk walks the table once, converting a table row
  // to float32 once per chunk (not once per x row), and keeps a running argmax per x row.
  auto chunk = [&](int64_t r0, int64_t r1) {
    std::vector<float> e(static_cast<size_t>(dim));
    std::vector<float> best(static_cast<size_t>(r1 - r0), -std::numeric_limits<float>::infinity());
    std::vector<int32_t> arg(static_cast<size_t>(r1 - r0), 0);
    const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(et);
    for (int64_t v = 0; v < vocab; ++v) {
      const char* ev = static_cast<const char*>(E) + static_cast<size_t>(v) * row_bytes;
      for (int64_t d = 0; d < dim; ++d) e[d] = load_as_f32(ev, et, d);
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * dim;
        float dot = 0;
        for (int64_t d = 0; d < dim; ++d) dot += xr[d] * e[d];
        const float s = knn_score(dot, e_norms[v], cosine);
        // Strictly greater: v ascends, so the lowest index keeps a tie; NaN never wins.
        if (s > best[r - r0]) {
          best[r - r0] = s;
          arg[r - r0] = static_cast<int32_t>(v);
        }
      }
    }
    for (int64_t r = r0; r < r1; ++r) out[r] = arg[r - r0];
  };
  if (pool)
    pool->parallel_for(rows, 4, chunk);
  else
    chunk(0, rows);
}

void knn_norms(const void* E, DType et, int64_t vocab, int64_t dim, bool cosine, float* out) {
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(et);
  for (int64_t v = 0; v < vocab; ++v) {
    const char* ev = static_cast<const char*>(E) + static_cast<size_t>(v) * row_bytes;
    double ss = 0;
    for (int64_t d = 0; d < dim; ++d) {
      const double a = load_as_f32(ev, et, d);
      ss += a * a;
    }
    out[v] = static_cast<float>(cosine ? std::sqrt(ss) : ss);
  }
}

}  // namespace difflm
