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

}  // namespace difflm_test
