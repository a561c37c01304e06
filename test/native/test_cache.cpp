// Fast-dLLM's block KV caches and parallel commits in the masked loop, on a tiny random
// checkpoint. Token-level agreement with Fast-dLLM's own code is checked on the faithfulness
// fixtures (test/api); these tests pin the invariants the engine relies on.
#include <cmath>

#include "cpu/cpu_backend.h"
#include "decode/masked.h"
#include "engine.h"
#include "errors.h"
#include "safetensors.h"
#include "test.h"
#include "tiny_model.h"

using namespace difflm;
using namespace difflm_test;

namespace {

LladaSpec spec() {
  LladaSpec s;
  s.d_model = 32, s.n_layers = 2, s.n_heads = 4, s.n_kv_heads = 2, s.mlp_hidden = 48;
  s.vocab = 61, s.max_seq_len = 64, s.rope_theta = 10000, s.rms_eps = 1e-5;
  return s;
}

const std::string& weights_path() {
  static const std::string path = write_tiny(spec());
  return path;
}

std::shared_ptr<Model> load(int threads) {
  return Model::load(ModelLoadSpec{"llada", {weights_path()}, spec(), threads});
}

MaskedRequest request(CacheMode cache) {
  MaskedRequest r;
  r.prompt = {1, 5, 9, 2, 33};
  r.gen_length = 24, r.steps = 24, r.block_length = 8;
  r.mask_id = 60, r.eos_id = 58, r.eot_id = 59;
  r.cache = cache;
  return r;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST(window_forwards_over_a_fresh_cache_equal_the_full_forward) {
  CpuBackend be(2);
  WeightStore w({weights_path()});
  LladaModel m(spec(), w, be);
  const int64_t L = 30, V = spec().vocab, s = 13, e = 21;
  std::vector<int32_t> ids(L);
  for (int64_t i = 0; i < L; ++i) ids[i] = static_cast<int32_t>((i * 7 + 3) % 60);
  const CheckCancel none = [] {};
  std::vector<float> full(L * V);
  m.forward(ids.data(), 1, L, 0, L, full.data(), none);
  KvCache cache = m.make_cache(L);
  std::vector<float> got(L * V);
  m.forward_window(ids.data(), 0, L, L, cache, 0, L, got.data(), none);
  CHECK_MSG(max_abs_diff(full, got) < 1e-5, "refill " << max_abs_diff(full, got));
  // With the canvas unchanged since the refill, the cached keys and values are exact, so the
  // prefix window [s, L) and the dual window [s, e) give the full forward's logits.
  const std::vector<float> want(full.begin() + s * V, full.begin() + e * V);
  for (const int64_t w1 : {L, e}) {
    std::vector<float> win((e - s) * V);
    m.forward_window(ids.data() + s, s, w1, L, cache, s, e, win.data(), none);
    CHECK_MSG(max_abs_diff(want, win) < 1e-5,
              "window to " << w1 << ": " << max_abs_diff(want, win));
  }
  CHECK_THROWS(m.forward_window(ids.data(), 0, L, L + 1, cache, 0, 1, got.data(), none),
               ErrorCode::InvalidArgument, "do not fit a cache of 30 positions");
}

TEST(cached_generation_fills_every_block_in_order_and_is_thread_independent) {
  for (CacheMode c : {CacheMode::Prefix, CacheMode::Dual}) {
    MaskedRequest r = request(c);
    std::vector<StepEvent> events;
    auto m = load(2);
    MaskedResult res = m->generate(r, [&](const StepEvent& e) { events.push_back(e); }, {});
    CHECK(res.steps == 24 && res.forwards == 24 && events.size() == 24);
    for (int64_t i = 5; i < 29; ++i) CHECK(res.canvas[i] != r.mask_id);
    for (const auto& e : events) {
      CHECK(e.committed.size() == 1);
      const int64_t s = 5 + 8 * e.block;
      CHECK(e.committed[0].first >= s && e.committed[0].first < s + 8);
    }
    r.temperature = 0.7, r.seed = 3;
    CHECK_MSG(load(1)->generate(r, {}, {}).canvas == load(3)->generate(r, {}, {}).canvas,
              "cache " << int(c));
  }
}

TEST(threshold_one_commits_one_per_step_like_the_fixed_schedule) {
  // Random weights never reach confidence 1, so threshold 1 commits only the best position per
  // step: the same tokens as one commit per step, for every cache mode.
  for (CacheMode c : {CacheMode::None, CacheMode::Prefix, CacheMode::Dual}) {
    auto m = load(2);
    MaskedRequest fixed = request(c);
    MaskedRequest par = request(c);
    par.parallel = Parallel::Threshold, par.threshold = 1.0, par.steps = 7;  // steps unused
    const MaskedResult a = m->generate(fixed, {}, {}), b = m->generate(par, {}, {});
    CHECK_MSG(a.canvas == b.canvas, "cache " << int(c));
    CHECK(b.steps == 24 && b.forwards == 24);
  }
}

TEST(threshold_zero_completes_each_block_in_one_step) {
  for (CacheMode c : {CacheMode::None, CacheMode::Prefix, CacheMode::Dual}) {
    MaskedRequest r = request(c);
    r.parallel = Parallel::Threshold, r.threshold = 0.0;
    std::vector<StepEvent> events;
    MaskedResult res = load(2)->generate(r, [&](const StepEvent& e) { events.push_back(e); }, {});
    CHECK(res.steps == 3 && events.size() == 3);
    for (const auto& e : events) CHECK(e.committed.size() == 8);
    for (int64_t i = 5; i < 29; ++i) CHECK(res.canvas[i] != r.mask_id);
  }
}

TEST(factor_mode_commits_at_least_one_and_finishes_every_block) {
  MaskedRequest r = request(CacheMode::Dual);
  r.parallel = Parallel::Factor, r.factor = 2.0;
  std::vector<StepEvent> events;
  MaskedResult res = load(2)->generate(r, [&](const StepEvent& e) { events.push_back(e); }, {});
  size_t total = 0;
  for (const auto& e : events) {
    CHECK(!e.committed.empty());
    total += e.committed.size();
  }
  CHECK(total == 24 && res.steps == static_cast<int64_t>(events.size()));
  for (int64_t i = 5; i < 29; ++i) CHECK(res.canvas[i] != r.mask_id);
}

TEST(cache_and_parallel_options_are_validated) {
  auto m = load(1);
  MaskedRequest r = request(CacheMode::Prefix);
  r.cfg_scale = 1.0;
  CHECK_THROWS(m->generate(r, {}, {}), ErrorCode::InvalidArgument,
               "cfgScale > 0 is not implemented with a KV cache");
  r = request(CacheMode::None);
  r.parallel = Parallel::Threshold, r.threshold = 1.5;
  CHECK_THROWS(m->generate(r, {}, {}), ErrorCode::InvalidArgument, "parallel.threshold");
  r.threshold = NAN;
  CHECK_THROWS(m->generate(r, {}, {}), ErrorCode::InvalidArgument, "parallel.threshold");
  r = request(CacheMode::None);
  r.parallel = Parallel::Factor, r.factor = 0;
  CHECK_THROWS(m->generate(r, {}, {}), ErrorCode::InvalidArgument, "parallel.factor");
}
