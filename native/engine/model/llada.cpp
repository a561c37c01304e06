#include "llada.h"

#include <map>
#include <new>
#include <utility>

#include "../errors.h"

namespace difflm {

namespace {

WeightMatrix matrix(Backend& be, const TensorView& t) {
  return WeightMatrix{be.weight(t), t.dtype, t.shape[0], t.shape[1]};
}

// What each tensor does, and its name in either layout.
enum class Role {
  Embed,
  FinalNorm,
  Head,
  AttnNorm,
  FfnNorm,
  Q,
  K,
  V,
  O,
  Gate,
  Up,
  Down,
  QBias,
  KBias,
  VBias
};

// Tensor names by role in each layout; "#" stands for the layer index.
struct RoleNames {
  Role role;
  const char* llada;
  const char* llama;
};
constexpr RoleNames kNames[] = {
    {Role::Embed, "model.transformer.wte.weight", "model.embed_tokens.weight"},
    {Role::FinalNorm, "model.transformer.ln_f.weight", "model.norm.weight"},
    {Role::Head, "model.transformer.ff_out.weight", "lm_head.weight"},
    {Role::AttnNorm, "model.transformer.blocks.#.attn_norm.weight",
     "model.layers.#.input_layernorm.weight"},
    {Role::FfnNorm, "model.transformer.blocks.#.ff_norm.weight",
     "model.layers.#.post_attention_layernorm.weight"},
    {Role::Q, "model.transformer.blocks.#.q_proj.weight", "model.layers.#.self_attn.q_proj.weight"},
    {Role::K, "model.transformer.blocks.#.k_proj.weight", "model.layers.#.self_attn.k_proj.weight"},
    {Role::V, "model.transformer.blocks.#.v_proj.weight", "model.layers.#.self_attn.v_proj.weight"},
    {Role::O, "model.transformer.blocks.#.attn_out.weight",
     "model.layers.#.self_attn.o_proj.weight"},
    {Role::Gate, "model.transformer.blocks.#.ff_proj.weight",
     "model.layers.#.mlp.gate_proj.weight"},
    {Role::Up, "model.transformer.blocks.#.up_proj.weight", "model.layers.#.mlp.up_proj.weight"},
    {Role::Down, "model.transformer.blocks.#.ff_out.weight", "model.layers.#.mlp.down_proj.weight"},
    // LLaDA checkpoints have no biases (LladaSpec::validate rejects qkv_bias there).
    {Role::QBias, "", "model.layers.#.self_attn.q_proj.bias"},
    {Role::KBias, "", "model.layers.#.self_attn.k_proj.bias"},
    {Role::VBias, "", "model.layers.#.self_attn.v_proj.bias"},
};

std::string tensor_name(Layout layout, Role role, int64_t layer = 0) {
  for (const RoleNames& n : kNames) {
    if (n.role != role) continue;
    std::string name = layout == Layout::Llada ? n.llada : n.llama;
    const size_t hash = name.find('#');
    if (hash != std::string::npos) name.replace(hash, 1, std::to_string(layer));
    return name;
  }
  return {};
}

}  // namespace

void LladaSpec::validate() const {
  auto need = [](bool ok, const char* what) {
    if (!ok) throw EngineError(ErrorCode::InvalidArgument, std::string("model spec: ") + what);
  };
  need(d_model > 0, "dModel must be positive");
  need(n_layers > 0, "nLayers must be positive");
  need(n_heads > 0 && d_model % n_heads == 0, "nHeads must divide dModel");
  need(n_kv_heads > 0 && n_heads % n_kv_heads == 0, "nKvHeads must divide nHeads");
  need(head_dim() % 2 == 0, "head dimension must be even for rotary embedding");
  need(head_dim() <= 256, "head dimension above 256 is not supported");
  need(mlp_hidden > 0, "mlpHidden must be positive");
  need(vocab > 0 && vocab < (int64_t(1) << 31), "vocabSize must be positive and below 2^31");
  need(max_seq_len > 0 && max_seq_len <= (int64_t(1) << 20), "maxSequenceLength out of range");
  need(rope_theta > 0, "ropeTheta must be positive");
  need(rms_eps > 0, "rmsNormEps must be positive");
  need(!qkv_bias || layout == Layout::Llama, "q/k/v biases exist in the Hugging Face layout only");
  need(!(shift_logits && causal), "shifted logits are for bidirectional (masked) models");
}

// Every tensor the model reads, with its role and expected shape, in load order.
struct TensorSpec {
  Role role;
  int64_t layer;
  std::vector<int64_t> shape;
};

static std::vector<TensorSpec> tensor_list(const LladaSpec& s) {
  const int64_t d = s.d_model, kv = s.n_kv_heads * s.head_dim();
  std::vector<TensorSpec> list = {{Role::Embed, 0, {s.vocab, d}}, {Role::FinalNorm, 0, {d}}};
  if (!s.weight_tying) list.push_back({Role::Head, 0, {s.vocab, d}});
  for (int64_t i = 0; i < s.n_layers; ++i) {
    list.push_back({Role::AttnNorm, i, {d}});
    list.push_back({Role::FfnNorm, i, {d}});
    list.push_back({Role::Q, i, {d, d}});
    list.push_back({Role::K, i, {kv, d}});
    list.push_back({Role::V, i, {kv, d}});
    list.push_back({Role::O, i, {d, d}});
    list.push_back({Role::Gate, i, {s.mlp_hidden, d}});
    list.push_back({Role::Up, i, {s.mlp_hidden, d}});
    list.push_back({Role::Down, i, {d, s.mlp_hidden}});
    if (s.qkv_bias) {
      list.push_back({Role::QBias, i, {d}});
      list.push_back({Role::KBias, i, {kv}});
      list.push_back({Role::VBias, i, {kv}});
    }
  }
  return list;
}

size_t LladaModel::weight_bytes(const LladaSpec& spec, const WeightStore& w) {
  size_t n = 0;
  for (const TensorSpec& t : tensor_list(spec))
    n += w.require(tensor_name(spec.layout, t.role, t.layer), t.shape).bytes;
  return n;
}

LladaModel::LladaModel(const LladaSpec& spec, const WeightStore& w, Backend& be)
    : spec_(spec), be_(be) {
  spec_.validate();
  // Check every name and shape before preparing (uploading) anything.
  std::map<std::pair<Role, int64_t>, const TensorView*> found;
  for (const TensorSpec& t : tensor_list(spec_))
    found[{t.role, t.layer}] = &w.require(tensor_name(spec_.layout, t.role, t.layer), t.shape);
  auto get = [&](Role r, int64_t i) -> const TensorView& { return *found.at({r, i}); };
  auto norm = [&](Role r, int64_t i) {
    const TensorView& t = get(r, i);
    return Norm{be.weight(t), t.dtype};
  };
  wte_ = norm(Role::Embed, 0);
  ln_f_ = norm(Role::FinalNorm, 0);
  head_ = matrix(be, get(spec_.weight_tying ? Role::Embed : Role::Head, 0));
  for (int64_t i = 0; i < spec_.n_layers; ++i) {
    Layer L;
    L.attn_norm = norm(Role::AttnNorm, i);
    L.ff_norm = norm(Role::FfnNorm, i);
    L.q = matrix(be, get(Role::Q, i));
    L.k = matrix(be, get(Role::K, i));
    L.v = matrix(be, get(Role::V, i));
    L.o = matrix(be, get(Role::O, i));
    L.gate = matrix(be, get(Role::Gate, i));
    L.up = matrix(be, get(Role::Up, i));
    L.down = matrix(be, get(Role::Down, i));
    if (spec_.qkv_bias) {
      L.q_bias = norm(Role::QBias, i);
      L.k_bias = norm(Role::KBias, i);
      L.v_bias = norm(Role::VBias, i);
    }
    layers_.push_back(L);
  }
  // Rotary tables are computed on the host (float32, as PyTorch does) and put on the backend.
  const int64_t half = spec_.head_dim() / 2, entries = spec_.max_seq_len * half;
  std::vector<float> host(static_cast<size_t>(2 * entries));
  RopeTable t{spec_.max_seq_len, half, host.data(), host.data() + entries};
  rope_fill(t, spec_.rope_theta);
  rope_storage_ = Buffer(be, host.size() * sizeof(float));
  be.to_backend(rope_storage_.as(), host.data(), host.size() * sizeof(float));
  rope_ = RopeTable{spec_.max_seq_len, half, rope_storage_.as(), rope_storage_.as() + entries};
}

size_t LladaModel::work_bytes(int64_t batch, int64_t len, int64_t rows) const {
  const int64_t n = batch * len, d = spec_.d_model, kv = spec_.n_kv_heads * spec_.head_dim();
  const int64_t floats = n * (4 * d + 2 * kv + 2 * spec_.mlp_hidden) + batch * rows * d;
  return static_cast<size_t>(floats) * sizeof(float);
}

void LladaModel::forward(const int32_t* ids, int64_t batch, int64_t len, int64_t row0, int64_t row1,
                         float* logits, const CheckCancel& check_cancel) const {
  check_shape(batch, len, row0, row1);
  for (int64_t i = 0; i < batch * len; ++i)
    if (ids[i] < 0 || ids[i] >= spec_.vocab)
      throw EngineError(ErrorCode::InvalidArgument, "token id " + std::to_string(ids[i]) +
                                                        " at position " + std::to_string(i) +
                                                        " is outside the vocabulary (" +
                                                        std::to_string(spec_.vocab) + " rows)");
  Buffer ids_b(be_, static_cast<size_t>(batch * len) * sizeof(int32_t));
  be_.to_backend(ids_b.as(), ids, static_cast<size_t>(batch * len) * sizeof(int32_t));
  run(ids_b.as<int32_t>(), batch, len, row0, row1, false, logits, check_cancel);
}

void LladaModel::check_shape(int64_t batch, int64_t len, int64_t row0, int64_t row1) const {
  if (len <= 0 || len > spec_.max_seq_len || row0 < 0 || row1 > len || row0 >= row1 || batch <= 0)
    throw EngineError(ErrorCode::InvalidArgument,
                      "forward: sequence length " + std::to_string(len) + " or rows [" +
                          std::to_string(row0) + ", " + std::to_string(row1) +
                          ") out of range (max_sequence_length " +
                          std::to_string(spec_.max_seq_len) + ")");
}

void LladaModel::project_qkv(const Layer& L, const float* x, int64_t n, float* q, float* k,
                             float* v) const {
  be_.gemm(x, n, L.q, q);
  be_.gemm(x, n, L.k, k);
  be_.gemm(x, n, L.v, v);
  if (!spec_.qkv_bias) return;
  const int64_t kv = spec_.n_kv_heads * spec_.head_dim();
  be_.add_bias(q, n, spec_.d_model, L.q_bias.data, L.q_bias.dtype);
  be_.add_bias(k, n, kv, L.k_bias.data, L.k_bias.dtype);
  be_.add_bias(v, n, kv, L.v_bias.data, L.v_bias.dtype);
}

void LladaModel::finish_layer(const Layer& L, const float* att, int64_t n, float* h, float* x,
                              float* gate, float* up) const {
  Backend& be = be_;
  const int64_t d = spec_.d_model, ff = spec_.mlp_hidden;
  be.gemm(att, n, L.o, x);
  be.add(h, x, n * d);
  be.rmsnorm(h, n, d, L.ff_norm.data, L.ff_norm.dtype, static_cast<float>(spec_.rms_eps), x);
  be.gemm(x, n, L.gate, gate);
  be.gemm(x, n, L.up, up);
  be.swiglu(gate, up, gate, n * ff);
  be.gemm(gate, n, L.down, x);
  be.add(h, x, n * d);
}

void LladaModel::head(const float* h, int64_t rows, float* sel, float* logits) const {
  be_.rmsnorm(h, rows, spec_.d_model, ln_f_.data, ln_f_.dtype, static_cast<float>(spec_.rms_eps),
              sel);
  be_.gemm(sel, rows, head_, logits);
}

void LladaModel::head_rows(const float* h, int64_t w0, int64_t row0, int64_t row1, bool shift,
                           float* sel, float* logits) const {
  const int64_t d = spec_.d_model, rows = row1 - row0;
  if (!shift) return head(h + (row0 - w0) * d, rows, sel, logits);
  if (row0 > w0) return head(h + (row0 - 1 - w0) * d, rows, sel, logits);
  // The window's first position takes its own output, the others the one before theirs.
  head(h, 1, sel, logits);
  if (rows > 1) head(h, rows - 1, sel, logits + spec_.vocab);
}

void LladaModel::forward_resident(const int32_t* ids, int64_t batch, int64_t len, int64_t row0,
                                  int64_t row1, float* logits,
                                  const CheckCancel& check_cancel) const {
  run(ids, batch, len, row0, row1, spec_.shift_logits, logits, check_cancel);
}

void LladaModel::run(const int32_t* ids, int64_t batch, int64_t len, int64_t row0, int64_t row1,
                     bool shift, float* logits, const CheckCancel& check_cancel) const {
  check_shape(batch, len, row0, row1);
  Backend& be = be_;
  const int64_t n = batch * len, d = spec_.d_model, hd = spec_.head_dim();
  const int64_t kv = spec_.n_kv_heads * hd, ff = spec_.mlp_hidden, rows = row1 - row0;
  const size_t f = sizeof(float);
  Buffer h(be, n * d * f), x(be, n * d * f), q(be, n * d * f), att(be, n * d * f),
      k(be, n * kv * f), v(be, n * kv * f), gate(be, n * ff * f), up(be, n * ff * f),
      sel(be, rows * d * f);
  be.embedding(wte_.data, wte_.dtype, d, ids, n, h.as());
  for (const Layer& L : layers_) {
    check_cancel();
    be.rmsnorm(h.as(), n, d, L.attn_norm.data, L.attn_norm.dtype, static_cast<float>(spec_.rms_eps),
               x.as());
    project_qkv(L, x.as(), n, q.as(), k.as(), v.as());
    for (int64_t b = 0; b < batch; ++b) {
      be.rope(q.as() + b * len * d, len, spec_.n_heads, hd, 0, rope_);
      be.rope(k.as() + b * len * kv, len, spec_.n_kv_heads, hd, 0, rope_);
      be.attention(q.as() + b * len * d, k.as() + b * len * kv, v.as() + b * len * kv,
                   att.as() + b * len * d, len, len, spec_.n_heads, spec_.n_kv_heads, hd, 0,
                   spec_.causal);
    }
    finish_layer(L, att.as(), n, h.as(), x.as(), gate.as(), up.as());
  }
  check_cancel();
  // Final norm and LM head on the requested rows only.
  for (int64_t b = 0; b < batch; ++b)
    head_rows(h.as() + b * len * d, 0, row0, row1, shift, sel.as(),
              logits + b * rows * spec_.vocab);
}

KvCache LladaModel::make_cache(int64_t capacity) const {
  if (capacity <= 0 || capacity > spec_.max_seq_len)
    throw EngineError(ErrorCode::InvalidArgument,
                      "KV cache of " + std::to_string(capacity) +
                          " positions: must be 1 to max_sequence_length (" +
                          std::to_string(spec_.max_seq_len) + ")");
  const size_t bytes =
      static_cast<size_t>(spec_.n_layers * capacity * spec_.n_kv_heads * spec_.head_dim()) *
      sizeof(float);
  KvCache c;
  c.k = Buffer(be_, bytes);
  c.v = Buffer(be_, bytes);
  c.capacity = capacity;
  return c;
}

void LladaModel::forward_cached(const int32_t* ids, int64_t n_new, KvCache& cache, float* logits,
                                const CheckCancel& check_cancel) const {
  if (!spec_.causal)
    throw EngineError(ErrorCode::InvalidArgument, "a KV cache needs a causal model");
  if (n_new <= 0 || cache.len + n_new > cache.capacity)
    throw EngineError(ErrorCode::InvalidArgument,
                      "forward_cached: " + std::to_string(n_new) + " new tokens after " +
                          std::to_string(cache.len) + " exceed the cache's " +
                          std::to_string(cache.capacity) + " positions");
  for (int64_t i = 0; i < n_new; ++i)
    if (ids[i] < 0 || ids[i] >= spec_.vocab)
      throw EngineError(ErrorCode::InvalidArgument, "token id " + std::to_string(ids[i]) +
                                                        " is outside the vocabulary (" +
                                                        std::to_string(spec_.vocab) + " rows)");
  Buffer ids_b(be_, n_new * sizeof(int32_t));
  be_.to_backend(ids_b.as(), ids, n_new * sizeof(int32_t));
  const int64_t end = cache.len + n_new;
  forward_window(ids_b.as<int32_t>(), cache.len, end, end, cache, end - 1, end, logits,
                 check_cancel);
  cache.len = end;
}

void LladaModel::forward_window(const int32_t* ids, int64_t w0, int64_t w1, int64_t kv_end,
                                KvCache& cache, int64_t row0, int64_t row1, float* logits,
                                const CheckCancel& check_cancel) const {
  if (spec_.causal) kv_end = w1;
  if (w0 < 0 || w0 >= w1 || w1 > kv_end || kv_end > cache.capacity || row0 < w0 || row1 > w1 ||
      row0 >= row1)
    throw EngineError(ErrorCode::InvalidArgument,
                      "forward_window: window [" + std::to_string(w0) + ", " + std::to_string(w1) +
                          "), keys up to " + std::to_string(kv_end) + ", rows [" +
                          std::to_string(row0) + ", " + std::to_string(row1) +
                          ") do not fit a cache of " + std::to_string(cache.capacity) +
                          " positions");
  Backend& be = be_;
  const int64_t n = w1 - w0, d = spec_.d_model, hd = spec_.head_dim();
  const int64_t kv = spec_.n_kv_heads * hd, ff = spec_.mlp_hidden, rows = row1 - row0;
  const size_t f = sizeof(float);
  Buffer h(be, n * d * f), x(be, n * d * f), q(be, n * d * f), att(be, n * d * f),
      gate(be, n * ff * f), up(be, n * ff * f), sel(be, rows * d * f);
  be.embedding(wte_.data, wte_.dtype, d, ids, n, h.as());
  for (size_t l = 0; l < layers_.size(); ++l) {
    check_cancel();
    const Layer& L = layers_[l];
    float* kl = cache.k.as() + static_cast<int64_t>(l) * cache.capacity * kv;
    float* vl = cache.v.as() + static_cast<int64_t>(l) * cache.capacity * kv;
    be.rmsnorm(h.as(), n, d, L.attn_norm.data, L.attn_norm.dtype, static_cast<float>(spec_.rms_eps),
               x.as());
    // The window's keys and values go straight into the cache.
    project_qkv(L, x.as(), n, q.as(), kl + w0 * kv, vl + w0 * kv);
    be.rope(q.as(), n, spec_.n_heads, hd, w0, rope_);
    be.rope(kl + w0 * kv, n, spec_.n_kv_heads, hd, w0, rope_);
    be.attention(q.as(), kl, vl, att.as(), n, kv_end, spec_.n_heads, spec_.n_kv_heads, hd, w0,
                 spec_.causal);
    finish_layer(L, att.as(), n, h.as(), x.as(), gate.as(), up.as());
  }
  check_cancel();
  head_rows(h.as(), w0, row0, row1, spec_.shift_logits, sel.as(), logits);
}

}  // namespace difflm
