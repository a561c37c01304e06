// The shared float32 exponential and the segmented confidence (decode/confidence.h) against
// plain float64 references.
#include <cmath>
#include <limits>

#include "decode/confidence.h"
#include "exp_nonpositive.h"
#include "test.h"

using namespace difflm;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

double exact_softmax(const std::vector<float>& f, int64_t x0) {
  float mx = kNegInf;
  for (float x : f) mx = std::max(mx, x);
  if (f[x0] == kNegInf || mx == kNegInf) return 0.0;
  double sum = 0;
  for (float x : f)
    if (x != kNegInf) sum += std::exp(double(x) - mx);
  return std::exp(double(f[x0]) - mx) / sum;
}

}  // namespace

TEST(exp_nonpositive_is_within_2e7_of_exp_and_handles_the_edges) {
  double worst = 0;
  for (float x = 0.f; x >= -87.f; x = std::nextafter(x - 1e-3f, kNegInf)) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::abs(exp_nonpositive(x) / want - 1));
  }
  CHECK_MSG(worst < 2e-7, "worst relative error " << worst);
  CHECK(exp_nonpositive(0.f) == 1.f);
  CHECK(exp_nonpositive(-87.5f) == 0.f && exp_nonpositive(-1e30f) == 0.f);
  // The edge of the range: -87 itself counts (a normal float), the next float below does not.
  CHECK(exp_nonpositive(-87.f) > 1.5e-38f && exp_nonpositive(-87.f) < 1.7e-38f);
  CHECK(exp_nonpositive(std::nextafter(-87.f, kNegInf)) == 0.f);
  CHECK(exp_nonpositive(-0.f) == 1.f && exp_nonpositive(-std::numeric_limits<float>::max()) == 0.f);
  CHECK(exp_nonpositive(kNegInf) == 0.f);
  CHECK(std::isnan(exp_nonpositive(std::numeric_limits<float>::quiet_NaN())));
}

TEST(softmax_confidence_is_the_softmax_probability_across_segments) {
  std::mt19937 rng(11);
  // Row lengths around the segment size, and rows whose segments are partly or wholly -inf.
  for (int64_t V : {int64_t{1}, int64_t{5}, kConfidenceSegment, kConfidenceSegment + 1,
                    3 * kConfidenceSegment + 77}) {
    for (int pattern = 0; pattern < 4; ++pattern) {
      auto f = difflm_test::random_floats(static_cast<size_t>(V), rng, 6.f);
      if (pattern == 1)  // a rising row: later segments raise the running max
        for (int64_t v = 0; v < V; ++v) f[v] += 20.f * float(v) / float(V);
      if (pattern == 2)  // the first segment all -inf
        for (int64_t v = 0; v < std::min(V - 1, kConfidenceSegment); ++v) f[v] = kNegInf;
      if (pattern == 3)  // scattered -inf
        for (int64_t v = 0; v < V; v += 3) f[v] = kNegInf;
      for (int64_t x0 : {int64_t{0}, V / 2, V - 1}) {
        const double want = exact_softmax(f, x0), got = softmax_confidence(f.data(), V, x0);
        if (want == 0)
          CHECK(got == 0);
        else
          CHECK_MSG(std::abs(got / want - 1) < 1e-6, "V " << V << " pattern " << pattern << " x0 "
                                                          << x0 << ": " << got << " vs " << want);
      }
    }
  }
  std::vector<float> all_inf(40000, kNegInf);
  CHECK(softmax_confidence(all_inf.data(), 40000, 7) == 0.0);
}
