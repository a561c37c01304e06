#include "ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "thread_pool.h"

namespace difflm {

namespace {

void maybe_parallel(ThreadPool* pool, int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn) {
  if (pool)
    pool->parallel_for(n, grain, fn);
  else
    fn(0, n);
}

}  // namespace

void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
             float* out, ThreadPool* pool) {
  maybe_parallel(pool, rows, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float scale = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
      float* o = out + r * dim;
      for (int64_t i = 0; i < dim; ++i) o[i] = (xr[i] * scale) * load_as_f32(w, wt, i);
    }
  });
}

void rope_fill(RopeTable& t, double theta) {
  const float th = static_cast<float>(theta);
  const float dim = static_cast<float>(2 * t.half);
  for (int64_t j = 0; j < t.half; ++j) {
    const float inv_freq = 1.0f / std::pow(th, static_cast<float>(2 * j) / dim);
    for (int64_t p = 0; p < t.max_pos; ++p) {
      const float angle = static_cast<float>(p) * inv_freq;
      t.cos[p * t.half + j] = std::cos(angle);
      t.sin[p * t.half + j] = std::sin(angle);
    }
  }
}

void rope_apply(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0,
                const RopeTable& t, ThreadPool* pool) {
  const int64_t half = head_dim / 2;
  maybe_parallel(pool, rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* c = t.cos + (pos0 + r) * t.half;
      const float* s = t.sin + (pos0 + r) * t.half;
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (r * heads + h) * head_dim;
        for (int64_t j = 0; j < half; ++j) {
          const float a = v[j], b = v[j + half];
          v[j] = a * c[j] - b * s[j];
          v[j + half] = b * c[j] + a * s[j];
        }
      }
    }
  });
}

void swiglu(const float* gate, const float* up, float* out, int64_t n, ThreadPool* pool) {
  maybe_parallel(pool, n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
               int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0, bool causal,
               ThreadPool* pool) {
  const int64_t group = n_heads / n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int64_t q_stride = n_heads * hd, kv_stride = n_kv_heads * hd;
  // One task per (head, query row); each keeps its score row in a thread-local buffer.
  maybe_parallel(pool, n_heads * nq, 4, [&](int64_t t0, int64_t t1) {
    std::vector<float> scores(static_cast<size_t>(nk));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t h = t / nq, i = t % nq;
      const int64_t kvh = h / group;
      const float* qi = q + i * q_stride + h * hd;
      const int64_t n_keys = causal ? std::min(nk, q_pos0 + i + 1) : nk;
      float max_s = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n_keys; ++j) {
        const float* kj = k + j * kv_stride + kvh * hd;
        float s = 0;
        for (int64_t d = 0; d < hd; ++d) s += qi[d] * kj[d];
        s *= scale;
        scores[j] = s;
        max_s = std::max(max_s, s);
      }
      float sum = 0;
      for (int64_t j = 0; j < n_keys; ++j) {
        scores[j] = std::exp(scores[j] - max_s);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      float* o = out + i * q_stride + h * hd;
      for (int64_t d = 0; d < hd; ++d) o[d] = 0;
      for (int64_t j = 0; j < n_keys; ++j) {
        const float p = scores[j] * inv;
        const float* vj = v + j * kv_stride + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += p * vj[d];
      }
    }
  });
}

void embedding_gather(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                      float* out) {
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(dt);
  for (int64_t i = 0; i < n; ++i) {
    const char* row = static_cast<const char*>(table) + static_cast<size_t>(ids[i]) * row_bytes;
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = load_as_f32(row, dt, d);
  }
}

}  // namespace difflm
