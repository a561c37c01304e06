// KNN rounding (cpu/knn.h) against a brute-force float64 search, for each table dtype, on sizes
// that are not multiples of anything; inputs are table rows plus small noise, so the nearest row
// is clear by a wide margin and float32 rounding cannot change the answer.
#include <cmath>
#include <limits>

#include "cpu/knn.h"
#include "cpu/thread_pool.h"
#include "dtype.h"
#include "test.h"

using namespace difflm;

namespace {

// The table in dtype dt, and its float32 values (what the kernel sees after conversion).
struct Table {
  std::vector<float> f32;      // data when dt == F32, and the converted values otherwise
  std::vector<uint16_t> bits;  // data when dt is 16-bit
  DType dt;
  const void* data() const {
    return dt == DType::F32 ? static_cast<const void*>(f32.data())
                            : static_cast<const void*>(bits.data());
  }
};

Table make_table(const std::vector<float>& src, DType dt) {
  Table t{src, {}, dt};
  if (dt == DType::F32) return t;
  t.bits.resize(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    t.bits[i] = dt == DType::BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
    t.f32[i] = dt == DType::BF16 ? bf16_to_f32(t.bits[i]) : f16_to_f32(t.bits[i]);
  }
  return t;
}

// Brute force in float64: index of the best row and the gap to the runner-up (relative).
struct Ref {
  int32_t idx;
  double gap;
};
Ref brute(const float* x, const std::vector<float>& e, int64_t vocab, int64_t dim, bool cosine) {
  double best = -std::numeric_limits<double>::infinity(), second = best;
  int32_t idx = 0;
  for (int64_t v = 0; v < vocab; ++v) {
    double dot = 0, nn = 0, dist = 0;
    for (int64_t d = 0; d < dim; ++d) {
      const double a = x[d], b = e[v * dim + d];
      dot += a * b, nn += b * b, dist += (a - b) * (a - b);
    }
    const double s = cosine ? dot / std::sqrt(nn) : -dist;
    if (s > best) {
      second = best, best = s, idx = static_cast<int32_t>(v);
    } else if (s > second) {
      second = s;
    }
  }
  return {idx, (best - second) / (1.0 + std::fabs(best))};
}

}  // namespace

TEST(knn_round_matches_brute_force_for_each_dtype) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  struct Shape {
    int64_t rows, dim, vocab;
  };
  for (Shape sh : {Shape{1, 3, 1}, Shape{7, 3, 257}, Shape{33, 17, 1000}, Shape{13, 128, 301},
                   Shape{5, 16, 821}}) {
    const auto src = difflm_test::random_floats(sh.vocab * sh.dim, rng);
    for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
      const Table t = make_table(src, dt);
      for (bool cosine : {false, true}) {
        std::vector<float> norms(sh.vocab);
        knn_norms(t.data(), dt, sh.vocab, sh.dim, cosine, norms.data());
        // x[r] = a random table row + noise far below the distance between rows.
        std::vector<float> x(sh.rows * sh.dim);
        std::uniform_int_distribution<int64_t> pick(0, sh.vocab - 1);
        const auto noise = difflm_test::random_floats(x.size(), rng, 1e-3f);
        for (int64_t r = 0; r < sh.rows; ++r) {
          const int64_t v = pick(rng);
          for (int64_t d = 0; d < sh.dim; ++d)
            x[r * sh.dim + d] = t.f32[v * sh.dim + d] + noise[r * sh.dim + d];
        }
        std::vector<int32_t> got(sh.rows, -1), got1(sh.rows, -1);
        knn_round(x.data(), sh.rows, sh.dim, t.data(), dt, sh.vocab, norms.data(), cosine,
                  got.data(), &pool);
        knn_round(x.data(), sh.rows, sh.dim, t.data(), dt, sh.vocab, norms.data(), cosine,
                  got1.data(), nullptr);
        CHECK(got == got1);
        for (int64_t r = 0; r < sh.rows; ++r) {
          const Ref ref = brute(&x[r * sh.dim], t.f32, sh.vocab, sh.dim, cosine);
          if (sh.vocab > 1)  // the input must be unambiguous for the comparison to mean anything
            CHECK_MSG(ref.gap > 1e-4, "near-tie in test data, gap " << ref.gap);
          CHECK_MSG(got[r] == ref.idx, "rows " << sh.rows << " dim " << sh.dim << " vocab "
                                               << sh.vocab << " " << dtype_name(dt)
                                               << (cosine ? " cosine" : " l2") << " row " << r
                                               << ": " << got[r] << " != " << ref.idx);
        }
      }
    }
  }
}

TEST(knn_norms_match_float64) {
  std::mt19937 rng(12);
  const int64_t vocab = 37, dim = 19;
  const auto src = difflm_test::random_floats(vocab * dim, rng, 2.f);
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    const Table t = make_table(src, dt);
    std::vector<float> sq(vocab), nrm(vocab);
    knn_norms(t.data(), dt, vocab, dim, false, sq.data());
    knn_norms(t.data(), dt, vocab, dim, true, nrm.data());
    for (int64_t v = 0; v < vocab; ++v) {
      double ss = 0;
      for (int64_t d = 0; d < dim; ++d) ss += double(t.f32[v * dim + d]) * t.f32[v * dim + d];
      CHECK(sq[v] == float(ss));
      CHECK(nrm[v] == float(std::sqrt(ss)));
    }
  }
}

TEST(knn_round_ties_pick_lowest_index_and_skip_zero_rows_under_cosine) {
  // Rows 1 and 3 are equal (and closest to x), row 0 is zero, row 2 is far.
  const int64_t dim = 4, vocab = 4;
  const std::vector<float> e = {0, 0, 0, 0, 1, 2, 3, 4, -5, 1, 0, 2, 1, 2, 3, 4};
  const std::vector<float> x = {1.1f, 2, 3, 4, 0, 0, 0, 0};
  for (bool cosine : {false, true}) {
    std::vector<float> norms(vocab);
    knn_norms(e.data(), DType::F32, vocab, dim, cosine, norms.data());
    std::vector<int32_t> out(2, -1);
    knn_round(x.data(), 2, dim, e.data(), DType::F32, vocab, norms.data(), cosine, out.data(),
              nullptr);
    CHECK(out[0] == 1);
    // x = 0: under L2 the zero row 0 is nearest; under cosine every score is 0 except row 0's
    // 0/0 = NaN, which never wins, so the first of the zero scores (row 1) does.
    CHECK(out[1] == (cosine ? 1 : 0));
  }
}
