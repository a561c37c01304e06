// Left-to-right decoding of a Llama-layout model: the KV-cached forward against the full causal
// forward, greedy decoding against argmax by recomputation, and the request checks.
#include "cpu/cpu_backend.h"
#include "decode/ar.h"
#include "engine.h"
#include "errors.h"
#include "tiny_model.h"

using namespace difflm;
using namespace difflm_test;

namespace {

LladaSpec tiny_llama() {
  LladaSpec s;
  s.d_model = 24, s.n_layers = 2, s.n_heads = 4, s.n_kv_heads = 2, s.mlp_hidden = 40;
  s.vocab = 53, s.max_seq_len = 64, s.rope_theta = 10000, s.rms_eps = 1e-5;
  return s;
}

const std::string& llama_path() {
  static const std::string path = write_tiny(tiny_llama(), "", Layout::Llama);
  return path;
}

int32_t argmax(const float* v, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = static_cast<int32_t>(i);
  return best;
}

}  // namespace

TEST(kv_cached_forward_matches_the_full_causal_forward) {
  LladaSpec s = tiny_llama();
  s.layout = Layout::Llama, s.causal = true;
  WeightStore ws({llama_path()});
  CpuBackend cpu(2);
  LladaModel net(s, ws, cpu);
  const std::vector<int32_t> ids = {3, 17, 8, 44, 1, 29, 30, 2, 9};
  std::vector<float> full(ids.size() * s.vocab);
  net.forward(ids.data(), 1, ids.size(), 0, ids.size(), full.data(), [] {});
  // Prefill 5 tokens, then one at a time: each step's logits are the full forward's row.
  KvCache cache = net.make_cache(static_cast<int64_t>(ids.size()));
  std::vector<float> last(s.vocab);
  net.forward_cached(ids.data(), 5, cache, last.data(), [] {});
  CHECK(rel_l2(last.data(), full.data() + 4 * s.vocab, s.vocab) <= 1e-5);
  for (size_t i = 5; i < ids.size(); ++i) {
    net.forward_cached(&ids[i], 1, cache, last.data(), [] {});
    CHECK_MSG(rel_l2(last.data(), full.data() + i * s.vocab, s.vocab) <= 1e-5, "position " << i);
  }
  CHECK_THROWS(net.forward_cached(ids.data(), 1, cache, last.data(), [] {}),
               ErrorCode::InvalidArgument, "exceed the cache's 9 positions");
}

TEST(greedy_ar_decoding_equals_argmax_by_recomputation) {
  auto m = Model::load({"llama", {llama_path()}, tiny_llama(), 2});
  ArRequest r;
  r.prompt = {3, 17, 8};
  r.max_new_tokens = 12;
  r.stop_at_eos = false;
  std::vector<StepEvent> events;
  MaskedResult res = m->generate_ar(r, [&](const StepEvent& e) { events.push_back(e); }, {});
  REQUIRE(res.canvas.size() == 15);
  std::vector<int32_t> seq = r.prompt;
  for (int i = 0; i < 12; ++i) {
    const auto logits = m->logits(seq, {});
    seq.push_back(argmax(logits.data() + (seq.size() - 1) * 53, 53));
  }
  CHECK(res.canvas == seq);
  CHECK(events.size() == 12);
  for (size_t i = 0; i < events.size(); ++i)
    CHECK(events[i].committed.size() == 1 && events[i].committed[0].first == int32_t(3 + i));
  // top-k 1 at any temperature is greedy; sampling is reproducible by seed.
  r.temperature = 1.3, r.filter.top_k = 1;
  CHECK(m->generate_ar(r, {}, {}).canvas == seq);
  r.filter.top_k = 0, r.seed = 5;
  CHECK(m->generate_ar(r, {}, {}).canvas == m->generate_ar(r, {}, {}).canvas);
  // Stopping at EOS: make the first greedy token the "EOS".
  r = ArRequest{};
  r.prompt = {3, 17, 8};
  r.max_new_tokens = 12;
  r.eos_id = seq[3];
  CHECK(m->generate_ar(r, {}, {}).canvas.size() == 4);
}

TEST(ar_requests_are_checked) {
  auto m = Model::load({"llama", {llama_path()}, tiny_llama(), 1});
  ArRequest r;
  r.prompt = {1};
  r.max_new_tokens = 64;
  CHECK_THROWS(m->generate_ar(r, {}, {}), ErrorCode::InvalidArgument,
               "exceeds max_position_embeddings (64)");
  r.max_new_tokens = 4, r.filter.top_p = 0;
  CHECK_THROWS(m->generate_ar(r, {}, {}), ErrorCode::InvalidArgument, "topP must be in (0, 1]");
  MaskedRequest mr;
  mr.prompt = {1};
  mr.gen_length = 8, mr.steps = 8, mr.block_length = 8, mr.mask_id = 52;
  CHECK_THROWS(m->generate(mr, {}, {}), ErrorCode::InvalidArgument, "needs a bidirectional model");
  // A LLaDA checkpoint is not a Llama one: the names say so.
  CHECK_THROWS(Model::load({"llama", {write_tiny(tiny_llama())}, tiny_llama(), 1}),
               ErrorCode::ModelLoad, "missing tensor 'model.embed_tokens.weight'");
}

TEST(causal_score_is_the_exact_negative_log_likelihood) {
  auto m = Model::load({"llama", {llama_path()}, tiny_llama(), 2});
  ScoreRequest r;
  r.ids = {3, 17, 8, 44, 1, 29};
  r.first = 2;  // score ids[2..5] given what precedes each
  const ScoreResult got = m->score(r, {});
  const auto logits = m->logits(r.ids, {});
  double want = 0;
  for (size_t t = 2; t < r.ids.size(); ++t) {
    const float* row = logits.data() + (t - 1) * 53;
    double z = 0;
    for (int v = 0; v < 53; ++v) z += std::exp(double(row[v]));
    want -= std::log(std::exp(double(row[r.ids[t]])) / z);
  }
  CHECK(got.tokens == 4);
  CHECK_MSG(std::abs(got.nll - want) < 1e-6 * std::abs(want), got.nll << " vs " << want);
  r.ids.assign(65, 1);
  CHECK_THROWS(m->score(r, {}), ErrorCode::InvalidArgument, "more than the model's context (64)");
}
