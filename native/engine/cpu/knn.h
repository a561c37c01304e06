// Nearest-neighbour rounding of continuous diffusion LMs (notes continuous_and_other.md §7): each
// vector x is replaced by the index of the closest row of the embedding table E. This is the
// plain CPU reference of cuda::knn_round; both score every row the same way:
//   L2:     argmin_v |x - e_v|^2  =  argmax_v (2 x.e_v - |e_v|^2)   (|x|^2 is constant per row)
//   cosine: argmax_v x.e_v / |e_v|                                  (|x| is constant per row)
// Dot products accumulate in float32; the first (lowest) index wins ties. Rows whose score is
// -inf or NaN (e.g. a zero row under cosine: 0/0) are never chosen; if no row can be, the
// answer is 0.
#pragma once

#include <cstdint>

#include "../dtype.h"

namespace difflm {

class ThreadPool;

// out[r] = nearest row of E [vocab][dim] (type et) to x[r] [dim], for r < rows. e_norms[v] is
// knn_norms()'s value for row v. `pool` may be null.
void knn_round(const float* x, int64_t rows, int64_t dim, const void* E, DType et, int64_t vocab,
               const float* e_norms, bool cosine, int32_t* out, ThreadPool* pool);

// The per-row constants knn_round needs, computed once per table: out[v] = |e_v|^2 (L2) or
// |e_v| (cosine), accumulated in float64 and rounded to float32.
void knn_norms(const void* E, DType et, int64_t vocab, int64_t dim, bool cosine, float* out);

}  // namespace difflm
