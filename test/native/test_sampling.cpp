// Top-k / top-p filtering (decode/sampling.h) against plain brute-force restatements of its
// definition, and against a float64 Hugging Face-style nucleus away from the cutoff; the filtered
// candidate draw (sample_row_filtered); threshold selection (decode/select.h) on the worked
// examples of notes/masked_dlm.md §1.1.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "decode/confidence.h"
#include "decode/masked.h"
#include "decode/rng_lanes.h"
#include "decode/sampling.h"
#include "decode/select.h"
#include "errors.h"
#include "rng.h"
#include "test.h"

using namespace difflm;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The definition in sampling.h, restated as directly as possible (O(V^2)): top-k keeps c[v] iff
// fewer than k values are strictly greater; top-p's cutoff is the largest surviving value t whose
// mass M(t) = sum of w over survivors with c >= t reaches the target.
std::vector<float> reference_filter(std::vector<float> c, double T, const TopKTopP& f) {
  const int64_t V = static_cast<int64_t>(c.size());
  if (f.top_k > 0 && f.top_k < V) {
    std::vector<bool> keep(V);
    for (int64_t v = 0; v < V; ++v) {
      int64_t greater = 0;
      for (int64_t u = 0; u < V; ++u) greater += c[u] > c[v];
      keep[v] = greater < f.top_k;
    }
    for (int64_t v = 0; v < V; ++v)
      if (!keep[v]) c[v] = kNegInf;
  }
  if (f.top_p >= 1.0) return c;
  const float m = *std::max_element(c.begin(), c.end());
  if (m == kNegInf) return c;
  std::vector<uint64_t> w(V);
  uint64_t total = 0;
  for (int64_t v = 0; v < V; ++v) {
    w[v] = top_p_weight((double(c[v]) - double(m)) / T);
    total += w[v];
  }
  if (total == 0) return c;
  const uint64_t target = top_p_target(f.top_p, total);
  float cutoff = kNegInf;
  for (int64_t v = 0; v < V; ++v) {
    if (c[v] == kNegInf) continue;
    uint64_t mass = 0;
    for (int64_t u = 0; u < V; ++u)
      if (c[u] >= c[v]) mass += w[u];
    if (mass >= target) cutoff = std::max(cutoff, c[v]);
  }
  for (auto& x : c)
    if (x < cutoff) x = kNegInf;
  return c;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

std::vector<float> filtered(std::vector<float> c, double T, const TopKTopP& f) {
  apply_top_k_top_p(c.data(), static_cast<int64_t>(c.size()), T, f);
  return c;
}

int64_t kept(const std::vector<float>& c) {
  return std::count_if(c.begin(), c.end(), [](float x) { return x != kNegInf; });
}

}  // namespace

TEST(top_p_weight_is_exp_scaled_to_2_pow_40) {
  CHECK(top_p_weight(0.0) == (uint64_t{1} << 40));
  CHECK(top_p_weight(-0.0) == (uint64_t{1} << 40));
  CHECK(top_p_weight(-std::numeric_limits<double>::infinity()) == 0);
  CHECK(top_p_weight(std::nan("")) == 0);
  CHECK(top_p_weight(-32.5) == 0);
  // Within half a unit (the rounding to an integer) plus 1e-14 relative of 2^40 exp(z).
  double worst = 0;
  for (int i = 0; i <= 320000; ++i) {
    const double z = -i / 10000.0, want = std::ldexp(std::exp(z), 40);
    const double err = std::fabs(double(top_p_weight(z)) - want) - 0.5;
    worst = std::max(worst, err / want);
  }
  CHECK_MSG(worst <= 1e-14, "worst relative excess " << worst);
  CHECK(top_p_target(0.9, 10) == 9);
  CHECK(top_p_target(0.95, 10) == 10);
  CHECK(top_p_target(1e-300, 10) == 1);
  CHECK(top_p_target(1.0, 10) == 10);
}

TEST(top_k_top_p_match_brute_force_on_awkward_sizes_and_ties) {
  std::mt19937 rng(31);
  int cases = 0;
  for (int64_t V : {1, 2, 3, 7, 97, 320, 1001})
    for (int pattern = 0; pattern < 4; ++pattern) {
      auto c = difflm_test::random_floats(V, rng, 3.f);
      if (pattern == 1)  // few levels: ties everywhere, including +0 / -0
        for (auto& x : c) x = std::round(x * 2.f) / 2.f;
      if (pattern == 1 && V > 4) c[1] = -0.f, c[2] = 0.f;
      if (pattern == 2)  // -inf entries
        for (int64_t v = 0; v < V; v += 3) c[v] = kNegInf;
      if (pattern == 3)  // a peaked row: the nucleus is small
        c[V / 2] = 12.f;
      for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{2}, V / 3, V - 1, V, V + 5})
        for (double p : {1.0, 0.999, 0.9, 0.5, 0.1, 1e-9})
          for (double T : {0.25, 0.7, 1.0, 3.0}) {
            TopKTopP f;
            f.top_k = k, f.top_p = p;
            const auto got = filtered(c, T, f), want = reference_filter(c, T, f);
            CHECK_MSG(same_bits(got, want), "V " << V << " pattern " << pattern << " k " << k
                                                 << " p " << p << " T " << T);
            ++cases;
          }
    }
  CHECK(cases > 1000);
}

// The bound the GPU's top-p select relies on: every token either rule keeps passes
// top_p_may_keep (LLaDA's rule also after top-k, which zeroes the weights below the k-th value),
// and on peaked rows at T 0.2 over three quarters of the tokens of non-zero weight fail it (so it
// saves work).
TEST(top_p_may_keep_holds_for_every_kept_token) {
  std::mt19937 rng(57);
  int64_t rows = 0, failed_on_peaked = 0, peaked_tokens = 0;
  for (int64_t V : {2, 7, 320, 4099})
    for (int pattern = 0; pattern < 5; ++pattern)
      for (double p : {0.999, 0.95, 0.9, 0.5, 1e-9})
        for (double T : {0.2, 1.0, 3.0})
          for (int64_t k : {int64_t{0}, V / 3 + 1}) {
            auto c = difflm_test::random_floats(V, rng, pattern == 4 ? 0.01f : 3.f);
            if (pattern == 1)  // few levels: ties everywhere
              for (auto& x : c) x = std::round(x * 2.f) / 2.f;
            if (pattern == 2)  // -inf entries
              for (int64_t v = 0; v < V; v += 3) c[v] = kNegInf;
            if (pattern == 3)  // peaked
              for (int64_t v = 0; v < V; v += 97) c[v] = 10.f;
            for (const bool dream : {false, true}) {
              if (dream && k > 0) continue;  // Dream's top-k comes after its top-p
              // Dream's weights are of z = c / T in float32 at temperature 1 (dream_sample.cu).
              std::vector<float> kept_c = c;
              if (dream)
                for (auto& x : kept_c) x /= static_cast<float>(T);
              const double t = dream ? 1.0 : T;
              const float m = *std::max_element(kept_c.begin(), kept_c.end());
              std::vector<float> after_k = kept_c;  // LLaDA's top-k first: weight 0 below the k-th
              apply_top_k(after_k.data(), V, k);
              std::vector<uint64_t> w(V);
              uint64_t total = 0;
              for (int64_t v = 0; v < V; ++v)
                total += w[v] =
                    after_k[v] == kNegInf ? 0 : top_p_weight((double(kept_c[v]) - double(m)) / t);
              if (dream) {
                apply_dream_top_p(kept_c.data(), V, p);
              } else {
                TopKTopP f;
                f.top_k = k, f.top_p = p;
                apply_top_k_top_p(kept_c.data(), V, T, f);
              }
              if (total == 0) continue;  // no cutoff (the GPU skips the select)
              const uint64_t target = dream ? dream_top_p_target(p, total) : top_p_target(p, total);
              for (int64_t v = 0; v < V; ++v) {
                const bool may = top_p_may_keep(w[v], V, total - target);
                CHECK_MSG(may || kept_c[v] == kNegInf, "V " << V << " pattern " << pattern << " p "
                                                            << p << " T " << T << " k " << k
                                                            << " token " << v);
                if (pattern == 3 && V > 1000 && T < 1 && w[v] > 0)
                  peaked_tokens += 1, failed_on_peaked += !may;
              }
              ++rows;
            }
          }
  CHECK(rows == 4 * 5 * 5 * 3 * 3);
  CHECK_MSG(failed_on_peaked * 4 > peaked_tokens * 3, failed_on_peaked << " of " << peaked_tokens);
}

TEST(top_k_keeps_ties_and_is_off_at_vocab) {
  const std::vector<float> c = {1.f, 3.f, 2.f, 3.f, 2.f, -1.f, 2.f};
  TopKTopP f;
  f.top_k = 2;  // the two largest are the tied 3s
  CHECK(kept(filtered(c, 1.0, f)) == 2);
  f.top_k = 3;  // the 3rd largest is 2, tied three times: 5 survive
  const auto got = filtered(c, 1.0, f);
  CHECK(kept(got) == 5);
  CHECK(got[0] == kNegInf && got[5] == kNegInf && got[2] == 2.f && got[1] == 3.f);
  f.top_k = 1;
  CHECK(kept(filtered(c, 1.0, f)) == 2);  // both maxima
  for (int64_t k : {7, 8, 1000}) {
    f.top_k = k;
    CHECK(same_bits(filtered(c, 1.0, f), c));
  }
  // Fewer finite values than k: the k-th largest is -inf and nothing finite is removed.
  const std::vector<float> d = {kNegInf, 0.5f, kNegInf, kNegInf};
  f.top_k = 3;
  CHECK(same_bits(filtered(d, 1.0, f), d));
}

TEST(top_p_edge_cases) {
  std::mt19937 rng(32);
  auto c = difflm_test::random_floats(1001, rng, 2.f);
  c[17] = c[900] = 20.f;  // a tied maximum (the rest are normal with sd 2)
  TopKTopP f;
  f.top_p = 1.0;  // off: bit-identical
  CHECK(same_bits(filtered(c, 0.7, f), c));
  f.top_p = 1e-12;  // only the maximum survives, with its tie
  auto got = filtered(c, 0.7, f);
  CHECK(kept(got) == 2 && got[17] == 20.f && got[900] == 20.f);
  f.top_p = 0.99;  // the peak holds > 0.9999 of the mass
  got = filtered(c, 1.0, f);
  CHECK(kept(got) == 2 && got[17] == 20.f);
  f.top_p = 0.999999;
  const auto flat = difflm_test::random_floats(1001, rng, 0.5f);  // without: almost everything
  CHECK(kept(filtered(flat, 1.0, f)) > 990);
  // T = 0: the limit keeps the maximum's tie group.
  f.top_p = 0.9;
  CHECK(kept(filtered(c, 0.0, f)) == 2);
  // All -inf: nothing to do.
  const std::vector<float> none(5, kNegInf);
  CHECK(same_bits(filtered(none, 1.0, f), none));
  // A single token.
  CHECK(same_bits(filtered({2.5f}, 1.0, f), std::vector<float>{2.5f}));
  // Bad arguments.
  float x[2] = {0.f, 1.f};
  TopKTopP bad;
  bad.top_p = 0.0;
  CHECK_THROWS(apply_top_k_top_p(x, 2, 1.0, bad), ErrorCode::InvalidArgument, "topP");
  bad.top_p = 1.5;
  CHECK_THROWS(apply_top_k_top_p(x, 2, 1.0, bad), ErrorCode::InvalidArgument, "topP");
  bad.top_p = std::nan("");
  CHECK_THROWS(apply_top_k_top_p(x, 2, 1.0, bad), ErrorCode::InvalidArgument, "topP");
  bad = TopKTopP{};
  bad.top_k = -1;
  CHECK_THROWS(apply_top_k_top_p(x, 2, 1.0, bad), ErrorCode::InvalidArgument, "topK");
}

// Away from the cutoff (cumulative mass not within 1e-8 of p), the kept set is Hugging Face's
// nucleus computed plainly in float64: sort by logit descending, keep a token iff the softmax
// mass strictly before it is < p.
TEST(top_p_matches_float64_nucleus_away_from_the_cutoff) {
  std::mt19937 rng(33);
  int compared = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t V = 50 + trial * 7;
    const auto c = difflm_test::random_floats(V, rng, 4.f);
    const double T = 0.5 + (trial % 5) * 0.3, p = 0.05 + (trial % 19) * 0.05;
    std::vector<int64_t> idx(V);
    for (int64_t v = 0; v < V; ++v) idx[v] = v;
    std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return c[a] > c[b]; });
    const double m = c[idx[0]];
    double total = 0;
    for (float x : c) total += std::exp((x - m) / T);
    std::vector<bool> want(V, false);
    double before = 0;
    bool near = false;
    for (int64_t j = 0; j < V; ++j) {
      if (std::fabs(before / total - p) < 1e-8) near = true;
      want[idx[j]] = before / total < p;
      before += std::exp((c[idx[j]] - m) / T);
    }
    if (near) continue;
    TopKTopP f;
    f.top_p = p;
    const auto got = filtered(c, T, f);
    bool same = true;
    for (int64_t v = 0; v < V; ++v) same &= (got[v] != kNegInf) == want[v];
    CHECK_MSG(same, "trial " << trial);
    ++compared;
  }
  CHECK(compared > 190);
}

TEST(sample_row_filtered_is_sample_row_when_off_and_draws_from_the_kept_set) {
  std::mt19937 rng(34);
  const int64_t V = 777;
  MaskedRequest req;
  req.seed = 99, req.eos_id = 5, req.eot_id = 6;
  for (double T : {0.0, 0.7, 1.0})
    for (int flags = 0; flags < 4; ++flags) {
      req.temperature = T;
      req.logits_eos_inf = flags & 1, req.confidence_eos_eot_inf = flags & 2;
      auto c = difflm_test::random_floats(V, rng, 3.f);
      c[5] = 9.f;  // EOS is the max
      // Off (k = 0 / >= vocab, p = 1): exactly sample_row, including the in-place writes.
      for (int64_t k : {int64_t{0}, V}) {
        TopKTopP off;
        off.top_k = k;
        auto a = c, b = c;
        const Candidate x = sample_row(a.data(), V, req, 3, 40);
        const Candidate y = sample_row_filtered(b.data(), V, req, off, 3, 40);
        CHECK(x.token == y.token && x.confidence == y.confidence && same_bits(a, b));
      }
      // On: the token is in the filtered set; confidence and writes are sample_row's over the
      // unfiltered row.
      for (int step = 0; step < 20; ++step) {
        TopKTopP f;
        f.top_k = 40, f.top_p = 0.8;
        auto a = c;
        const Candidate y = sample_row_filtered(a.data(), V, req, f, step, 40 + step);
        auto fc = c;
        if (req.logits_eos_inf) fc[5] = kNegInf;
        const auto kept_set = T == 0 ? fc : filtered(fc, T, f);
        CHECK_MSG(kept_set[y.token] != kNegInf, "T " << T << " flags " << flags);
        // sample_row's confidence of y.token over the unfiltered row, from its own arithmetic.
        auto b = c;
        MaskedRequest nofilter = req;
        const Candidate u = sample_row(b.data(), V, nofilter, step, 40 + step);
        CHECK(same_bits(a, b));  // the same in-place writes
        const double want = softmax_confidence(b.data(), V, y.token);
        CHECK_MSG(y.confidence == want, "T " << T << " flags " << flags);
        if (T == 0) CHECK(y.token == u.token);
      }
    }
}

// With top-k = 2 on a 5-token row the draw follows softmax(c / T) renormalised over the top 2.
TEST(sample_row_filtered_draws_with_renormalised_probabilities) {
  const std::vector<float> c = {0.f, 1.f, 0.5f, -1.f, 0.8f};
  MaskedRequest req;
  req.temperature = 1.0, req.seed = 7, req.remasking = Remasking::Random;
  TopKTopP f;
  f.top_k = 2;  // tokens 1 and 4
  int n1 = 0, n4 = 0, other = 0;
  const int draws = 20000;
  for (int s = 0; s < draws; ++s) {
    auto row = c;
    const int32_t t = sample_row_filtered(row.data(), 5, req, f, s, 0).token;
    n1 += t == 1, n4 += t == 4, other += t != 1 && t != 4;
  }
  CHECK(other == 0);
  const double want = 1.0 / (1.0 + std::exp(0.8 - 1.0));  // P(token 1)
  CHECK_MSG(std::fabs(double(n1) / draws - want) < 0.015, "got " << double(n1) / draws);
}

TEST(unit_interval_stays_inside_0_1_and_bounds_the_gumbel_noise) {
  const uint64_t top = (uint64_t{1} << 53) - 1;
  CHECK(unit_interval(0) == std::ldexp(1.0, -54));
  CHECK(unit_interval(top) < 1.0 && unit_interval(top) == 1.0 - std::ldexp(1.0, -53));
  CHECK(unit_interval(top - 1) < unit_interval(top));
  // The largest Gumbel noise any draw can give is below kGumbelNoiseMax.
  CHECK(-std::log(-std::log(unit_interval(top))) < kGumbelNoiseMax);
  CHECK(-std::log(-std::log(unit_interval(top))) > kGumbelNoiseMax - 0.3);
}

TEST(gumbel_noise_bound_holds_for_every_draw) {
  // Above the noise of every u, on a grid, around each threshold, and at the extremes.
  std::vector<double> us = {unit_interval(0), 0.5, 1.0 - std::ldexp(1.0, -53)};
  for (int i = 1; i < 100000; ++i) us.push_back(i / 100000.0);
  for (const double t :
       {0.6922006275546542, 0.8734230184922432, 0.9818510730606846, 0.9996645936323938}) {
    double u = t;
    for (int k = 0; k < 4; ++k) u = std::nextafter(u, 0.0);
    for (int k = 0; k < 8; ++k, u = std::nextafter(u, 1.0)) us.push_back(u);
  }
  for (const double u : us) {
    const double noise = -std::log(-std::log(u));
    CHECK_MSG(noise < gumbel_noise_bound(u), "u " << u << " noise " << noise);
  }
  CHECK(gumbel_noise_bound(0.5) == 1.0 && gumbel_noise_bound(0.95) == 4.0);
}

TEST(gumbel_draw_skipping_hopeless_tokens_equals_the_full_argmax) {
  // Wide logit spreads (most tokens far below the best), narrow ones (most within a few units,
  // where the per-draw noise bound decides), every temperature regime: the draw must pick the
  // token the unpruned argmax over all scores picks.
  // Spread 0 (every logit equal) at T = 5e-324 gives exact ties: the lowest index must win.
  std::mt19937 rng(21);
  for (const float spread : {12.f, 1.f, 0.f})
    for (const double T : {5e-324, 1e-310, 0.05, 0.7, 3.0})
      for (int trial = 0; trial < 30; ++trial) {
        std::normal_distribution<float> wide(0.f, spread > 0 ? spread : 1.f);
        const int64_t V = 3000 + 97 * trial;
        std::vector<float> row(static_cast<size_t>(V));
        for (auto& x : row) x = spread > 0 ? wide(rng) : 0.f;
        row[static_cast<size_t>(trial * 13 % V)] = kNegInf;
        MaskedRequest req;
        req.temperature = T;
        req.seed = 0xabcdef12345ull + trial;
        req.remasking = Remasking::Random;
        const int64_t step = trial, pos = 100 + trial;
        int32_t want = 0;
        double best = -std::numeric_limits<double>::infinity();
        for (int64_t v = 0; v < V; ++v) {
          if (row[v] == kNegInf) continue;
          const double u = uniform01(req.seed, RngStream::Gumbel, static_cast<uint64_t>(step),
                                     static_cast<uint64_t>(pos), static_cast<uint64_t>(v));
          const double score = row[v] - T * std::log(-std::log(u));
          if (score > best) best = score, want = static_cast<int32_t>(v);
        }
        auto copy = row;
        const Candidate got = sample_row(copy.data(), V, req, step, pos);
        CHECK_MSG(got.token == want, "spread " << spread << " T " << T << " trial " << trial);
      }
}

TEST(select_commits_threshold_worked_examples) {
  // notes §1.1: tau = 0.9, [0.99, 0.95, 0.91, 0.62, 0.40] -> 3; [0.55, 0.3] -> 1 (the best).
  {
    const double conf[] = {0.62, 0.99, 0.40, 0.91, 0.95};  // the same values, shuffled
    const uint8_t elig[] = {1, 1, 1, 1, 1};
    CHECK((select_commits(conf, elig, 5, CommitRule::at_threshold(0.9)) ==
           std::vector<int64_t>{1, 4, 3}));
  }
  {
    const double conf[] = {0.55, 0.3};
    const uint8_t elig[] = {1, 1};
    CHECK(
        (select_commits(conf, elig, 2, CommitRule::at_threshold(0.9)) == std::vector<int64_t>{0}));
  }
  {  // the best must be eligible; ties rank the lower position first
    const double conf[] = {0.99, 0.5, 0.7, 0.7};
    const uint8_t elig[] = {0, 1, 1, 1};
    CHECK(
        (select_commits(conf, elig, 4, CommitRule::at_threshold(0.9)) == std::vector<int64_t>{2}));
    CHECK((select_commits(conf, elig, 4, CommitRule::at_threshold(0.6)) ==
           std::vector<int64_t>{2, 3}));
    CHECK((select_commits(conf, elig, 4, CommitRule::at_threshold(0.0)) ==
           std::vector<int64_t>{2, 3, 1}));
  }
  {  // a confidence equal to the threshold is committed (Fast-dLLM drops only < threshold)
    const double conf[] = {0.9, 0.95, 0.89};
    const uint8_t elig[] = {1, 1, 1};
    CHECK((select_commits(conf, elig, 3, CommitRule::at_threshold(0.9)) ==
           std::vector<int64_t>{1, 0}));
  }
  {  // nothing eligible, or nothing at all
    const double conf[] = {0.9, 0.95};
    const uint8_t elig[] = {0, 0};
    CHECK(select_commits(conf, elig, 2, CommitRule::at_threshold(0.5)).empty());
    CHECK(select_commits(conf, elig, 0, CommitRule::at_threshold(0.5)).empty());
  }
  {  // threshold above every confidence (e.g. 1.0 with random remasking): one per step
    const double conf[] = {0.2, 0.8, 0.5};
    const uint8_t elig[] = {1, 1, 1};
    CHECK(
        (select_commits(conf, elig, 3, CommitRule::at_threshold(1.5)) == std::vector<int64_t>{1}));
  }
}

TEST(select_commits_factor_worked_examples) {
  // notes §1.1, factor 1: rank r needs 1 - 1/(r + 1) -> [-, 0.667, 0.75, 0.8, 0.833].
  {
    const double conf[] = {0.40, 0.95, 0.62, 0.99, 0.91};
    const uint8_t elig[] = {1, 1, 1, 1, 1};
    CHECK(
        (select_commits(conf, elig, 5, CommitRule::by_factor(1)) == std::vector<int64_t>{3, 1, 4}));
  }
  {  // only the last rank fails: Fast-dLLM's factor mode commits all 5; this stops at 4
    const double conf[] = {0.99, 0.95, 0.91, 0.85, 0.40};
    const uint8_t elig[] = {1, 1, 1, 1, 1};
    CHECK((select_commits(conf, elig, 5, CommitRule::by_factor(1)) ==
           std::vector<int64_t>{0, 1, 2, 3}));
  }
  {  // the first rank is always committed, however low; a large factor commits more
    const double conf[] = {0.1, 0.05};
    const uint8_t elig[] = {1, 1};
    CHECK((select_commits(conf, elig, 2, CommitRule::by_factor(1)) == std::vector<int64_t>{0}));
    CHECK((select_commits(conf, elig, 2, CommitRule::by_factor(3)) == std::vector<int64_t>{0, 1}));
  }
}

TEST(select_commits_top_k) {
  const double conf[] = {0.3, 0.9, 0.3, 0.8};
  const uint8_t elig[] = {1, 0, 1, 1};
  CHECK((select_commits(conf, elig, 4, CommitRule::top_k(2)) == std::vector<int64_t>{3, 0}));
  CHECK((select_commits(conf, elig, 4, CommitRule::top_k(9)) == std::vector<int64_t>{3, 0, 2}));
  CHECK(select_commits(conf, elig, 4, CommitRule::top_k(0)).empty());
}

TEST(uniform01_lanes_equal_uniform01_bit_for_bit) {
  // Eight draws side by side against one at a time, on counters that use every word: steps past
  // 2^32, both streams, positions and indices near the 32-bit edges.
  std::mt19937_64 rng(17);
  int64_t differ = 0, draws = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const uint64_t seed = rng(), step = trial % 3 ? rng() % 1000 : rng();
    const uint64_t pos = trial % 5 ? rng() % 4096 : 0xffffffffu - rng() % 8;
    const uint64_t index0 = trial % 7 ? rng() % 200000 : 0x7fffffffu - 7;
    const RngStream stream = trial % 2 ? RngStream::Gumbel : RngStream::Remask;
    double lanes[kRngLanes];
    uniform01_lanes(seed, stream, step, pos, index0, lanes);
    for (int l = 0; l < kRngLanes; ++l, ++draws) {
      const double one = uniform01(seed, stream, step, pos, index0 + l);
      differ += std::memcmp(&one, &lanes[l], sizeof one) != 0;
    }
  }
  CHECK_MSG(differ == 0, differ << " of " << draws << " draws differ");
}
