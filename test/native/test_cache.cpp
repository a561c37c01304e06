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

namespace {

// The CPU backend with a commit() that commits nothing: a backend whose canvas and the loop's
// host copy disagree.
class NoCommitBackend final : public Backend {
 public:
  CpuBackend cpu{1};
  std::string name() const override { return "no-commit"; }
  int threads() const override { return 1; }
  void* alloc(size_t bytes) override { return cpu.alloc(bytes); }
  void release(void* p) override { cpu.release(p); }
  void to_backend(void* d, const void* s, size_t n) override { cpu.to_backend(d, s, n); }
  void to_host(void* d, const void* s, size_t n) override { cpu.to_host(d, s, n); }
  const void* weight(const TensorView& t) override { return cpu.weight(t); }
  size_t free_bytes() const override { return cpu.free_bytes(); }
  void copy(void* d, const void* s, size_t n) override { cpu.copy(d, s, n); }
  void cfg_mix(float* c, const float* u, int64_t n, float s) override { cpu.cfg_mix(c, u, n, s); }
  void sample_candidates(float* l, int64_t rows, int64_t v, int64_t r0, const int32_t* canvas,
                         const MaskedRequest& req, int64_t step, int32_t* tok,
                         double* conf) override {
    cpu.sample_candidates(l, rows, v, r0, canvas, req, step, tok, conf);
  }
  int32_t sample_next(float* l, int64_t v, const MaskedRequest& d, const TopKTopP& f, int64_t step,
                      int64_t pos) override {
    return cpu.sample_next(l, v, d, f, step, pos);
  }
  void commit(const int32_t*, const double*, int32_t*, int64_t, int64_t, int32_t, const CommitRule&,
              std::vector<std::pair<int32_t, int32_t>>*) override {}
  void gemm(const float* A, int64_t M, const WeightMatrix& W, float* C) override {
    cpu.gemm(A, M, W, C);
  }
  void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
               float* out) override {
    cpu.rmsnorm(x, rows, dim, w, wt, eps, out);
  }
  void rope(float* x, int64_t rows, int64_t heads, int64_t hd, int64_t pos0,
            const RopeTable& t) override {
    cpu.rope(x, rows, heads, hd, pos0, t);
  }
  void swiglu(const float* g, const float* u, float* out, int64_t n) override {
    cpu.swiglu(g, u, out, n);
  }
  void add(float* x, const float* y, int64_t n) override { cpu.add(x, y, n); }
  void add_bias(float* x, int64_t rows, int64_t dim, const void* b, DType bt) override {
    cpu.add_bias(x, rows, dim, b, bt);
  }
  void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
                 int64_t nh, int64_t nkv, int64_t hd, int64_t q0, bool causal) override {
    cpu.attention(q, k, v, out, nq, nk, nh, nkv, hd, q0, causal);
  }
  void embedding(const void* t, DType dt, int64_t dim, const int32_t* ids, int64_t n,
                 float* out) override {
    cpu.embedding(t, dt, dim, ids, n, out);
  }
};

}  // namespace

TEST(parallel_step_that_commits_nothing_is_an_error_not_a_hang) {
  NoCommitBackend be;
  WeightStore w({weights_path()});
  LladaModel m(spec(), w, be);
  MaskedRequest r = request(CacheMode::None);
  r.parallel = Parallel::Threshold, r.threshold = 0.9;
  CHECK_THROWS(generate_masked(m, be, r, {}, [] { return false; }), ErrorCode::Internal,
               "parallel decoding committed nothing at step 0 with masks left in block 0");
}
