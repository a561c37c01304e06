// Reading the fixture folders under test/fixtures/ (paths relative to the repository root, the
// working directory of the test programs): a folder's LLaDA spec from its config.json, as lib/
// reads it, and small JSON helpers. Shared by the C++ tests and the GPU check.
#pragma once

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine.h"
#include "json.h"

namespace difflm_test {

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline double num(const difflm::JsonValue& o, const char* key, double fallback) {
  const difflm::JsonValue* v = o.find(key);
  return v && v->is_number() ? v->number : fallback;
}

inline std::vector<int32_t> ints(const difflm::JsonValue& a) {
  std::vector<int32_t> v;
  for (const auto& x : a.array) v.push_back(static_cast<int32_t>(x.number));
  return v;
}

// The spec of a fixture folder, read from its config.json as lib/ does for LLaDA.
inline difflm::ModelLoadSpec fixture_spec(const std::string& dir, const std::string& device,
                                          int threads = 8) {
  using difflm::JsonValue;
  JsonValue c = difflm::parse_json(read_text(dir + "/config.json"));
  difflm::ModelLoadSpec s;
  s.arch = "llada";
  s.device = device;
  s.threads = threads;
  difflm::LladaSpec& l = s.llada;
  l.d_model = static_cast<int64_t>(num(c, "d_model", 0));
  l.n_layers = static_cast<int64_t>(num(c, "n_layers", 0));
  l.n_heads = static_cast<int64_t>(num(c, "n_heads", 0));
  l.n_kv_heads = static_cast<int64_t>(num(c, "n_kv_heads", static_cast<double>(l.n_heads)));
  l.mlp_hidden = static_cast<int64_t>(num(c, "mlp_hidden_size", 0));
  l.vocab = static_cast<int64_t>(num(c, "embedding_size", num(c, "vocab_size", 0)));
  l.max_seq_len = static_cast<int64_t>(num(c, "max_sequence_length", 0));
  l.rope_theta = num(c, "rope_theta", 10000);
  l.rms_eps = num(c, "rms_norm_eps", 1e-5);
  const JsonValue* tie = c.find("weight_tying");
  l.weight_tying = tie && tie->boolean;
  const JsonValue* index = nullptr;
  JsonValue idx;
  std::ifstream probe(dir + "/model.safetensors.index.json");
  if (probe) {
    idx = difflm::parse_json(read_text(dir + "/model.safetensors.index.json"));
    index = idx.find("weight_map");
  }
  if (index) {
    for (const auto& kv : index->object) {
      const std::string f = dir + "/" + kv.second.string;
      if (std::find(s.files.begin(), s.files.end(), f) == s.files.end()) s.files.push_back(f);
    }
  } else {
    s.files.push_back(dir + "/model.safetensors");
  }
  return s;
}

// The spec of a fixture folder in Hugging Face's layout (hidden_size, num_hidden_layers, ...):
// arch "llama" or "dream", a single model.safetensors.
inline difflm::ModelLoadSpec hf_fixture_spec(const std::string& dir, const std::string& arch,
                                             const std::string& device, int threads = 8) {
  using difflm::JsonValue;
  JsonValue c = difflm::parse_json(read_text(dir + "/config.json"));
  difflm::ModelLoadSpec s;
  s.arch = arch;
  s.device = device;
  s.threads = threads;
  s.files = {dir + "/model.safetensors"};
  difflm::LladaSpec& l = s.llada;
  l.d_model = static_cast<int64_t>(num(c, "hidden_size", 0));
  l.n_layers = static_cast<int64_t>(num(c, "num_hidden_layers", 0));
  l.n_heads = static_cast<int64_t>(num(c, "num_attention_heads", 0));
  l.n_kv_heads = static_cast<int64_t>(num(c, "num_key_value_heads", double(l.n_heads)));
  l.mlp_hidden = static_cast<int64_t>(num(c, "intermediate_size", 0));
  l.vocab = static_cast<int64_t>(num(c, "vocab_size", 0));
  l.max_seq_len = static_cast<int64_t>(num(c, "max_position_embeddings", 0));
  l.rope_theta = num(c, "rope_theta", 10000);
  l.rms_eps = num(c, "rms_norm_eps", 1e-6);
  const JsonValue* tie = c.find("tie_word_embeddings");
  l.weight_tying = tie && tie->boolean;
  return s;
}

// A generate case of the Dream fixture (expected.json "generate"; options as the authors'
// DreamGenerationConfig names them) as a request to the engine.
inline difflm::MaskedRequest dream_case_request(const difflm::JsonValue& c, int32_t mask_id) {
  using difflm::DreamAlg;
  const difflm::JsonValue& o = *c.find("options");
  const std::string& alg = o.find("alg")->string;
  difflm::MaskedRequest r;
  r.sampler = difflm::Sampler::Dream;
  r.prompt = ints(*c.find("prompt_ids"));
  r.gen_length = static_cast<int64_t>(num(o, "max_new_tokens", 0));
  // Fast-dLLM's block-cached cases (expected_cache.json) have block_length and dual_cache.
  r.block_length = static_cast<int64_t>(num(o, "block_length", static_cast<double>(r.gen_length)));
  if (const difflm::JsonValue* dual = o.find("dual_cache"))
    r.cache = dual->boolean ? difflm::CacheMode::Dual : difflm::CacheMode::Prefix;
  r.steps = static_cast<int64_t>(num(o, "steps", 0));
  r.eps = num(o, "eps", 0);
  r.alg = alg == "origin"                 ? DreamAlg::Origin
          : alg == "maskgit_plus"         ? DreamAlg::MaskgitPlus
          : alg == "topk_margin"          ? DreamAlg::TopkMargin
          : alg == "confidence_threshold" ? DreamAlg::ConfidenceThreshold
                                          : DreamAlg::Entropy;
  r.threshold = num(o, "threshold", 0.9);
  r.filter.top_p = num(o, "top_p", 1.0);
  r.filter.top_k = static_cast<int64_t>(num(o, "top_k", 0));
  r.mask_id = mask_id;
  return r;
}

}  // namespace difflm_test
