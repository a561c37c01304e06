// Tiny random checkpoints for the engine tests, in LLaDA's or Hugging Face Llama's layout.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "model/llada.h"
#include "st_writer.h"
#include "test.h"

namespace difflm_test {

// Writes model.safetensors (F32) for `s` in a new temp folder and returns its path; `skip`
// leaves out the tensor of that name.
inline std::string write_tiny(const difflm::LladaSpec& s, const std::string& skip = "",
                              difflm::Layout layout = difflm::Layout::Llada) {
  std::mt19937 rng(42);
  const int64_t d = s.d_model, kv = s.n_kv_heads * s.head_dim();
  std::vector<StTensor> ts;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale) {
    if (name == skip) return;
    int64_t n = 1;
    for (auto x : shape) n *= x;
    auto v = random_floats(n, rng, scale);
    if (shape.size() == 1)
      for (auto& x : v) x = 1.f + x;
    ts.push_back(f32_tensor(name, shape, v));
  };
  const bool llada = layout == difflm::Layout::Llada;
  add(llada ? "model.transformer.wte.weight" : "model.embed_tokens.weight", {s.vocab, d}, 1.f);
  for (int64_t i = 0; i < s.n_layers; ++i) {
    const std::string b = llada ? "model.transformer.blocks." + std::to_string(i) + "."
                                : "model.layers." + std::to_string(i) + ".";
    add(b + (llada ? "attn_norm.weight" : "input_layernorm.weight"), {d}, 0.1f);
    add(b + (llada ? "q_proj.weight" : "self_attn.q_proj.weight"), {d, d}, 0.3f);
    add(b + (llada ? "k_proj.weight" : "self_attn.k_proj.weight"), {kv, d}, 0.3f);
    add(b + (llada ? "v_proj.weight" : "self_attn.v_proj.weight"), {kv, d}, 0.3f);
    add(b + (llada ? "attn_out.weight" : "self_attn.o_proj.weight"), {d, d}, 0.2f);
    add(b + (llada ? "ff_norm.weight" : "post_attention_layernorm.weight"), {d}, 0.1f);
    add(b + (llada ? "ff_proj.weight" : "mlp.gate_proj.weight"), {s.mlp_hidden, d}, 0.2f);
    add(b + (llada ? "up_proj.weight" : "mlp.up_proj.weight"), {s.mlp_hidden, d}, 0.2f);
    add(b + (llada ? "ff_out.weight" : "mlp.down_proj.weight"), {d, s.mlp_hidden}, 0.15f);
  }
  add(llada ? "model.transformer.ln_f.weight" : "model.norm.weight", {d}, 0.1f);
  add(llada ? "model.transformer.ff_out.weight" : "lm_head.weight", {s.vocab, d}, 0.5f);
  const std::string path = temp_dir() + "/model.safetensors";
  write_file(path, safetensors_bytes(ts));
  return path;
}

}  // namespace difflm_test
