// Dream's sampler parts (decode/dream.h): the timestep schedule against the worked examples of
// notes/masked_dlm.md §1.1 and the reference's own counts (test/fixtures/dream-tiny-a), Dream's
// top-p rule (mass before <= p) against a float64 restatement, each alg's confidence against its
// formula over a float64 softmax; and the engine end to end on the Dream fixture (the canvas of
// every deterministic case of the authors' sampler), so that the GPU machine checks it too.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/ops.h"
#include "decode/dream.h"
#include "decode/masked.h"
#include "decode/sampling.h"
#include "dream_boundary.h"
#include "dtype.h"
#include "engine.h"
#include "errors.h"
#include "fixture.h"
#include "json.h"
#include "test.h"

using namespace difflm;
using namespace difflm_test;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Per-step commit counts of a whole run that starts with `masked` masks.
std::vector<int64_t> schedule(int64_t masked, int64_t steps, float eps) {
  std::vector<int64_t> n;
  for (int64_t i = 0; i < steps; ++i) {
    n.push_back(dream_transfer_count(masked, i, steps, eps));
    masked -= n.back();
  }
  return n;
}

bool all_between(const std::vector<int64_t>& v, size_t from, size_t to, int64_t value) {
  return std::all_of(v.begin() + from, v.begin() + to, [&](int64_t x) { return x == value; });
}

MaskedRequest dream_request(DreamAlg alg) {
  MaskedRequest r;
  r.sampler = Sampler::Dream;
  r.alg = alg;
  return r;
}

// The row's softmax in float64.
std::vector<double> softmax(const std::vector<float>& z) {
  const float m = *std::max_element(z.begin(), z.end());
  std::vector<double> p(z.size());
  double s = 0;
  for (size_t v = 0; v < z.size(); ++v)
    s += p[v] = z[v] == kNegInf ? 0 : std::exp(double(z[v]) - m);
  for (double& x : p) x /= s;
  return p;
}

}  // namespace

TEST(dream_schedule_matches_the_worked_examples) {
  // G = 256, S = 256: the first step commits nothing, the last two.
  auto n = schedule(256, 256, 1e-3f);
  CHECK(n.front() == 0 && n.back() == 2 && all_between(n, 1, 255, 1));
  // G = 256, S = 128: [1, 2, ..., 2, 3]; G = 256, S = 32: [7, 8, ..., 8, 9].
  n = schedule(256, 128, 1e-3f);
  CHECK(n.front() == 1 && n.back() == 3 && all_between(n, 1, 127, 2));
  n = schedule(256, 32, 1e-3f);
  CHECK(n.front() == 7 && n.back() == 9 && all_between(n, 1, 31, 8));
  for (const auto& [g, s] : {std::pair<int64_t, int64_t>{512, 512}, {40, 7}, {100, 13}}) {
    n = schedule(g, s, 1e-3f);
    CHECK(std::accumulate(n.begin(), n.end(), int64_t{0}) == g);
  }
}

TEST(dream_schedule_matches_the_reference_counts) {
  const JsonValue exp = parse_json(read_text("test/fixtures/dream-tiny-a/expected.json"));
  int cases = 0;
  for (const JsonValue& c : exp.find("schedule")->find("cases")->array) {
    const auto want = ints(*c.find("transfer_counts"));
    const auto got =
        schedule(static_cast<int64_t>(num(c, "mask_count", 0)),
                 static_cast<int64_t>(num(c, "steps", 0)), static_cast<float>(num(c, "eps", 0)));
    CHECK_MSG(std::vector<int64_t>(want.begin(), want.end()) == got,
              "mask count " << num(c, "mask_count", 0) << ", steps " << num(c, "steps", 0));
    ++cases;
  }
  CHECK(cases == 8);
}

TEST(dream_fixture_generates_the_reference_canvases) {
  const std::string dir = "test/fixtures/dream-tiny-a";
  auto model = Model::load(hf_fixture_spec(dir, "dream", "cpu", 2));
  const JsonValue exp = parse_json(read_text(dir + "/expected.json"));
  const int32_t mask = static_cast<int32_t>(num(*exp.find("special_ids"), "mask", 0));
  int cases = 0;
  for (const JsonValue& c : exp.find("generate")->array) {
    const MaskedRequest r = dream_case_request(c, mask);
    CHECK_MSG(model->generate(r, {}, {}).canvas == ints(*c.find("output_ids")),
              c.find("name")->string);
    ++cases;
  }
  CHECK(cases == 15);
}

TEST(dream_fixture_decodes_cached_blocks_as_fast_dllm) {
  const std::string dir = "test/fixtures/dream-tiny-a";
  auto model = Model::load(hf_fixture_spec(dir, "dream", "cpu", 2));
  const int32_t mask = static_cast<int32_t>(
      num(*parse_json(read_text(dir + "/expected.json")).find("special_ids"), "mask", 0));
  const JsonValue exp = parse_json(read_text(dir + "/expected_cache.json"));
  int cases = 0;
  for (const JsonValue& c : exp.find("cases")->array) {
    const MaskedRequest r = dream_case_request(c, mask);
    const auto res = model->generate(r, {}, {});
    CHECK_MSG(res.canvas == ints(*c.find("output_ids")), c.find("name")->string);
    CHECK_MSG(res.forwards == static_cast<int64_t>(num(c, "committing_forwards", -1)),
              c.find("name")->string << ": " << res.forwards << " forwards");
    ++cases;
  }
  CHECK(cases == 14);
}

TEST(dream_timesteps_run_from_one_to_eps) {
  CHECK(dream_timestep(0, 10, 1e-3f) == 1.0f);
  CHECK(dream_timestep(10, 10, 1e-3f) == 1e-3f);
  for (int64_t i = 0; i < 10; ++i)
    CHECK(dream_timestep(i + 1, 10, 1e-3f) < dream_timestep(i, 10, 1e-3f));
  CHECK(dream_reveal_probability(9, 10, 1e-3f) == 1.0);
  CHECK(std::fabs(dream_reveal_probability(0, 10, 1e-3f) - 0.0999) < 1e-6);
}

TEST(dream_top_p_keeps_tokens_whose_mass_before_is_at_most_p) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t V = 2 + trial % 40;
    std::vector<float> z(V);
    std::normal_distribution<float> normal(0.f, 2.f);
    for (float& v : z) v = normal(rng);
    const double p = std::uniform_real_distribution<double>(0.05, 0.99)(rng);
    // Float64 restatement: sort descending, keep while the mass strictly before is <= p.
    const std::vector<double> prob = softmax(z);
    std::vector<int64_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b]; });
    std::vector<bool> keep(V);
    double before = 0;
    for (const int64_t v : order) {
      keep[v] = before <= p;
      before += prob[v];
    }
    // Cases within 1e-9 of the cutoff are rounding-dependent; skip those draws.
    bool close = false;
    before = 0;
    for (const int64_t v : order) {
      close |= std::fabs(before - p) < 1e-9;
      before += prob[v];
    }
    if (close) continue;
    std::vector<float> got = z;
    apply_dream_top_p(got.data(), V, p);
    for (int64_t v = 0; v < V; ++v)
      CHECK_MSG((got[v] != kNegInf) == keep[v], "trial " << trial << " token " << v);
  }
  // p below the most likely token's mass keeps it alone (its tied followers both have 0.576
  // before them).
  std::vector<float> two = {0.f, -1.f, -1.f};  // probabilities ~0.576, 0.212, 0.212
  apply_dream_top_p(two.data(), 3, 0.5);
  CHECK(two[0] == 0.f && two[1] == kNegInf && two[2] == kNegInf);
  std::vector<float> one_tok = {1.f, 0.f};
  apply_dream_top_p(one_tok.data(), 2, 1.0);  // p = 1: off
  CHECK(one_tok[1] == 0.f);
  CHECK_THROWS(apply_dream_top_p(one_tok.data(), 2, 0.0), ErrorCode::InvalidArgument, "topP");
}

TEST(dream_top_p_rule_differs_from_hf_exactly_at_the_boundary) {
  const TopPBoundary b = dream_top_p_boundary(16);
  REQUIRE(b.p > 0);
  CHECK(std::fabs(b.p - 0.5) < 1e-7);
  // With the second token kept, p(x0) at temperature 0 is about one half, not 1.
  MaskedRequest r = dream_request(DreamAlg::MaskgitPlus);
  r.filter.top_p = b.p;
  const Candidate c = dream_sample_row(b.logits.data(), 16, r, 0, 0);
  CHECK(c.token == 0 && std::fabs(c.confidence - 0.5) < 1e-6);
}

TEST(dream_confidences_follow_their_formulas) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.f, 3.f);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t V = 50 + trial;
    std::vector<float> l(V);
    for (float& v : l) v = normal(rng);
    const std::vector<double> p = softmax(l);
    const int64_t best = std::max_element(l.begin(), l.end()) - l.begin();
    std::vector<double> sorted = p;
    std::sort(sorted.rbegin(), sorted.rend());
    double neg_entropy = 0;
    for (double x : p) neg_entropy += x * std::log(x + 1e-10);

    const Candidate a = dream_sample_row(l.data(), V, dream_request(DreamAlg::MaskgitPlus), 0, 3);
    CHECK(a.token == best);
    CHECK(std::fabs(a.confidence - sorted[0]) < 1e-6 * sorted[0]);
    const Candidate b = dream_sample_row(l.data(), V, dream_request(DreamAlg::TopkMargin), 0, 3);
    CHECK(b.token == best);
    CHECK(std::fabs(b.confidence - (sorted[0] - sorted[1])) < 1e-12);
    const Candidate c = dream_sample_row(l.data(), V, dream_request(DreamAlg::Entropy), 0, 3);
    CHECK(c.token == best);
    CHECK(std::fabs(c.confidence - neg_entropy) < 1e-12 * std::max(1.0, -neg_entropy));
  }
}

TEST(dream_filters_change_the_confidence_at_temperature_zero) {
  // top-k 2 at temperature 0: the argmax is unchanged, the probabilities renormalize over two.
  std::vector<float> l = {2.f, 1.f, 0.f, -1.f};
  MaskedRequest r = dream_request(DreamAlg::MaskgitPlus);
  r.filter.top_k = 2;
  const Candidate c = dream_sample_row(l.data(), 4, r, 0, 0);
  CHECK(c.token == 0);
  CHECK(std::fabs(c.confidence - 1.0 / (1.0 + std::exp(-1.0))) < 1e-7);
  // Margin of a tie between the two best: 0.
  std::vector<float> tie = {1.f, 1.f, 0.f};
  CHECK(dream_sample_row(tie.data(), 3, dream_request(DreamAlg::TopkMargin), 0, 0).confidence == 0);
}

TEST(dream_draws_are_reproducible_and_follow_the_distribution) {
  // Temperature 1 over three tokens with probabilities ~(0.665, 0.245, 0.090): frequencies of
  // 6000 draws (different positions) within 4 sigma, and each draw a function of (seed, pos).
  std::vector<float> l = {1.f, 0.f, -1.f};
  MaskedRequest r = dream_request(DreamAlg::MaskgitPlus);
  r.temperature = 1.0;
  r.seed = 5;
  const std::vector<double> p = softmax(l);
  std::vector<int> count(3);
  for (int64_t pos = 0; pos < 6000; ++pos) {
    const Candidate c = dream_sample_row(l.data(), 3, r, 1, pos);
    ++count[c.token];
    CHECK(c.token == dream_sample_row(l.data(), 3, r, 1, pos).token);
    CHECK(std::fabs(c.confidence - p[c.token]) < 1e-6);
  }
  for (int v = 0; v < 3; ++v)
    CHECK_MSG(std::fabs(count[v] - 6000 * p[v]) < 4 * std::sqrt(6000 * p[v] * (1 - p[v])),
              "token " << v << ": " << count[v]);
}

TEST(dream_origin_confidence_orders_positions_by_reveal_draw) {
  // The positions a step reveals (draw below the probability) are exactly its most confident.
  std::vector<float> l = {0.f, 1.f};
  MaskedRequest r = dream_request(DreamAlg::Origin);
  r.seed = 9;
  const double prob = dream_reveal_probability(3, 16, 1e-3f);
  std::vector<double> conf;
  int64_t revealed = 0;
  for (int64_t pos = 0; pos < 64; ++pos) {
    conf.push_back(dream_sample_row(l.data(), 2, r, 3, pos).confidence);
    revealed += dream_reveal_draw(9, 3, pos) < prob;
  }
  std::vector<double> sorted = conf;
  std::sort(sorted.rbegin(), sorted.rend());
  for (int64_t pos = 0; pos < 64; ++pos)
    CHECK((dream_reveal_draw(9, 3, pos) < prob) ==
          (revealed > 0 && conf[pos] >= sorted[revealed - 1]));
}

TEST(add_bias_rows_adds_the_bias_to_every_row) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b = {f32_to_bf16(0.5f), f32_to_bf16(-1.f), f32_to_bf16(2.f)};
  add_bias_rows(x.data(), 0, 2, 3, b.data(), DType::BF16);
  CHECK((x == std::vector<float>{1.5f, 1.f, 5.f, 4.5f, 4.f, 8.f}));
}

TEST(dream_origin_reveals_at_the_schedule_rate) {
  // 4000 masked positions at step 3 of 16: the count revealed is within 4 sigma of 4000 p.
  std::vector<int32_t> canvas(4000, 9);
  MaskedRequest r = dream_request(DreamAlg::Origin);
  r.seed = 12, r.steps = 16, r.mask_id = 9;
  const DreamBudget budget(r, 4000);
  const double p = dream_reveal_probability(3, 16, 1e-3f);
  const double n = static_cast<double>(budget.at(3, canvas));
  CHECK_MSG(std::fabs(n - 4000 * p) < 4 * std::sqrt(4000 * p * (1 - p)), n << " vs " << 4000 * p);
  // The last step reveals every mask left.
  CHECK(budget.at(15, canvas) == 4000);
}

TEST(dream_alg_temp_picks_positions_by_softmax_of_confidence) {
  // Three positions whose maskgit confidences are c = p(x0) of rows made for it; with alg_temp
  // 0.1 the first pick (the largest key) falls on position i with probability
  // softmax(c / 0.1)_i, over 6000 steps.
  const std::vector<std::vector<float>> rows = {{0.f, 0.f}, {1.f, 0.f}, {2.f, 0.f}};
  MaskedRequest r = dream_request(DreamAlg::MaskgitPlus);
  r.alg_temp = 0.1, r.seed = 3;
  std::vector<double> c(3), w(3);
  for (int i = 0; i < 3; ++i) c[i] = 1.0 / (1.0 + std::exp(-double(rows[i][0])));
  double total = 0;
  for (int i = 0; i < 3; ++i) total += w[i] = std::exp(c[i] / 0.1);
  std::vector<int> first(3);
  for (int64_t step = 0; step < 6000; ++step) {
    int best = 0;
    double key = -1e300;
    for (int i = 0; i < 3; ++i) {
      const double k = dream_sample_row(rows[i].data(), 2, r, step, i).confidence;
      if (k > key) key = k, best = i;
    }
    ++first[best];
  }
  for (int i = 0; i < 3; ++i) {
    const double p = w[i] / total;
    CHECK_MSG(std::fabs(first[i] - 6000 * p) < 4 * std::sqrt(6000 * p * (1 - p)) + 1,
              "position " << i << ": " << first[i] << " vs " << 6000 * p);
  }
}

TEST(dream_temperature_overflow_is_an_error_naming_the_position) {
  std::vector<float> l = {1.f, 0.f};
  MaskedRequest r = dream_request(DreamAlg::Entropy);
  r.temperature = 1e-40;
  CHECK_THROWS(dream_sample_row(l.data(), 2, r, 0, 5), ErrorCode::InvalidArgument,
               "too small for these logits: logit / temperature overflows float32 at canvas "
               "position 5");
}

TEST(dream_shifted_rows_are_the_outputs_one_position_before) {
  // forward_resident (shifted) against forward (raw): row p is raw row p - 1, row 0 raw row 0,
  // for rows from 0 and from inside the sequence.
  const std::string dir = "test/fixtures/dream-tiny-a";
  ModelLoadSpec spec = hf_fixture_spec(dir, "dream", "cpu", 1);
  spec.llada.qkv_bias = spec.llada.shift_logits = true;
  spec.llada.layout = Layout::Llama;
  CpuBackend be(1);
  WeightStore w(spec.files);
  LladaModel m(spec.llada, w, be);
  const std::vector<int32_t> ids = {316, 40, 41, 319, 319, 42};
  const int64_t n = 6, V = spec.llada.vocab;
  std::vector<float> raw(n * V), shifted(n * V);
  const CheckCancel go = [] {};
  m.forward(ids.data(), 1, n, 0, n, raw.data(), go);
  m.forward_resident(ids.data(), 1, n, 0, n, shifted.data(), go);
  CHECK(std::equal(shifted.begin(), shifted.begin() + V, raw.begin()));
  CHECK(std::equal(shifted.begin() + V, shifted.end(), raw.begin()));
  std::vector<float> tail(2 * V);
  m.forward_resident(ids.data(), 1, n, 3, 5, tail.data(), go);
  CHECK(std::equal(tail.begin(), tail.end(), raw.begin() + 2 * V));
}

TEST(dream_runs_more_steps_than_tokens_and_from_an_empty_prompt) {
  auto model = Model::load(hf_fixture_spec("test/fixtures/dream-tiny-a", "dream", "cpu", 2));
  MaskedRequest r;
  r.sampler = Sampler::Dream;
  r.gen_length = r.block_length = 8;
  r.steps = 20;  // most steps commit nothing and run no forward
  r.mask_id = 319;
  const MaskedResult res = model->generate(r, {}, {});
  CHECK(res.steps == 20);
  CHECK(res.forwards > 0 && res.forwards < 20);
  CHECK(std::count(res.canvas.begin(), res.canvas.end(), 319) == 0);
}

TEST(dream_confidence_threshold_budget_carries_rejections_and_extends_the_last_step) {
  MaskedRequest r = dream_request(DreamAlg::ConfidenceThreshold);
  r.steps = 4;
  CHECK_THROWS(DreamBudget(r, 10), ErrorCode::InvalidArgument,
               "needs the number of masks (10) to be a multiple of steps (4)");
  DreamBudget b(r, 12);
  const std::vector<int32_t> canvas;
  CHECK(b.at(0, canvas) == 3);
  b.after(0, 3, 1);  // two rejected: carried
  CHECK(b.at(1, canvas) == 5);
  b.after(1, 5, 5);
  CHECK(b.at(2, canvas) == 3);
  b.after(2, 3, 3);
  b.after(3, 3, 2);  // the last step rejects one: one more step, with that one only
  CHECK(b.steps() == 5 && b.at(4, canvas) == 1);
  // The rule: of the budget's most confident, the best and those reaching the threshold.
  const double ranked[] = {0.5, 0.95, 0.91, 0.2};
  const uint8_t all[] = {1, 1, 1, 1};
  CHECK(select_commits(ranked, all, 4, CommitRule::top_k_at_threshold(3, 0.9)) ==
        (std::vector<int64_t>{1, 2}));
  CHECK(select_commits(ranked, all, 4, CommitRule::top_k_at_threshold(1, 0.9)) ==
        (std::vector<int64_t>{1}));
  CHECK(select_commits(ranked, all, 4, CommitRule::top_k_at_threshold(2, 0.99)) ==
        (std::vector<int64_t>{1}));
  CHECK(select_commits(ranked, all, 4, CommitRule::top_k_at_threshold(0, 0.5)).empty());
}
