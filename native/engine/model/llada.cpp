#include "llada.h"

#include <new>
#include <utility>

#include "../errors.h"

namespace difflm {

namespace {

WeightMatrix matrix(Backend& be, const TensorView& t) {
  return WeightMatrix{be.weight(t), t.dtype, t.shape[0], t.shape[1]};
}

std::string block_name(int64_t i, const char* leaf) {
  return "model.transformer.blocks." + std::to_string(i) + "." + leaf + ".weight";
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
  need(mlp_hidden > 0, "mlpHidden must be positive");
  need(vocab > 0 && vocab < (int64_t(1) << 31), "vocabSize must be positive and below 2^31");
  need(max_seq_len > 0 && max_seq_len <= (int64_t(1) << 20), "maxSequenceLength out of range");
  need(rope_theta > 0, "ropeTheta must be positive");
  need(rms_eps > 0, "rmsNormEps must be positive");
}

// Every tensor the model reads, with its expected shape, in load order.
static std::vector<std::pair<std::string, std::vector<int64_t>>> tensor_list(const LladaSpec& s) {
  const int64_t d = s.d_model, kv = s.n_kv_heads * s.head_dim();
  std::vector<std::pair<std::string, std::vector<int64_t>>> list = {
      {"model.transformer.wte.weight", {s.vocab, d}}, {"model.transformer.ln_f.weight", {d}}};
  if (!s.weight_tying) list.push_back({"model.transformer.ff_out.weight", {s.vocab, d}});
  for (int64_t i = 0; i < s.n_layers; ++i) {
    list.push_back({block_name(i, "attn_norm"), {d}});
    list.push_back({block_name(i, "ff_norm"), {d}});
    list.push_back({block_name(i, "q_proj"), {d, d}});
    list.push_back({block_name(i, "k_proj"), {kv, d}});
    list.push_back({block_name(i, "v_proj"), {kv, d}});
    list.push_back({block_name(i, "attn_out"), {d, d}});
    list.push_back({block_name(i, "ff_proj"), {s.mlp_hidden, d}});
    list.push_back({block_name(i, "up_proj"), {s.mlp_hidden, d}});
    list.push_back({block_name(i, "ff_out"), {d, s.mlp_hidden}});
  }
  return list;
}

size_t LladaModel::weight_bytes(const LladaSpec& spec, const WeightStore& w) {
  size_t n = 0;
  for (const auto& [name, shape] : tensor_list(spec)) n += w.require(name, shape).bytes;
  return n;
}

LladaModel::LladaModel(const LladaSpec& spec, const WeightStore& w, Backend& be)
    : spec_(spec), be_(be) {
  spec_.validate();
  // Check every name and shape before preparing (uploading) anything.
  for (const auto& [name, shape] : tensor_list(spec_)) w.require(name, shape);
  const int64_t d = spec_.d_model, kv = spec_.n_kv_heads * spec_.head_dim();
  auto norm = [&](const std::string& name) {
    const TensorView& t = w.require(name, {d});
    return Norm{be.weight(t), t.dtype};
  };
  const TensorView& wte = w.require("model.transformer.wte.weight", {spec_.vocab, d});
  wte_ = Norm{be.weight(wte), wte.dtype};
  ln_f_ = norm("model.transformer.ln_f.weight");
  head_ = spec_.weight_tying
              ? matrix(be, wte)
              : matrix(be, w.require("model.transformer.ff_out.weight", {spec_.vocab, d}));
  for (int64_t i = 0; i < spec_.n_layers; ++i) {
    Layer L;
    L.attn_norm = norm(block_name(i, "attn_norm"));
    L.ff_norm = norm(block_name(i, "ff_norm"));
    L.q = matrix(be, w.require(block_name(i, "q_proj"), {d, d}));
    L.k = matrix(be, w.require(block_name(i, "k_proj"), {kv, d}));
    L.v = matrix(be, w.require(block_name(i, "v_proj"), {kv, d}));
    L.o = matrix(be, w.require(block_name(i, "attn_out"), {d, d}));
    L.gate = matrix(be, w.require(block_name(i, "ff_proj"), {spec_.mlp_hidden, d}));
    L.up = matrix(be, w.require(block_name(i, "up_proj"), {spec_.mlp_hidden, d}));
    L.down = matrix(be, w.require(block_name(i, "ff_out"), {d, spec_.mlp_hidden}));
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
  forward_resident(ids_b.as<int32_t>(), batch, len, row0, row1, logits, check_cancel);
}

void LladaModel::check_shape(int64_t batch, int64_t len, int64_t row0, int64_t row1) const {
  if (len <= 0 || len > spec_.max_seq_len || row0 < 0 || row1 > len || row0 >= row1 || batch <= 0)
    throw EngineError(ErrorCode::InvalidArgument,
                      "forward: sequence length " + std::to_string(len) + " or rows [" +
                          std::to_string(row0) + ", " + std::to_string(row1) +
                          ") out of range (max_sequence_length " +
                          std::to_string(spec_.max_seq_len) + ")");
}

void LladaModel::forward_resident(const int32_t* ids, int64_t batch, int64_t len, int64_t row0,
                                  int64_t row1, float* logits,
                                  const CheckCancel& check_cancel) const {
  check_shape(batch, len, row0, row1);
  Backend& be = be_;
  const int64_t n = batch * len, d = spec_.d_model, hd = spec_.head_dim();
  const int64_t kv = spec_.n_kv_heads * hd, ff = spec_.mlp_hidden, rows = row1 - row0;
  const float eps = static_cast<float>(spec_.rms_eps);
  const size_t f = sizeof(float);
  Buffer h(be, n * d * f), x(be, n * d * f), q(be, n * d * f), att(be, n * d * f),
      k(be, n * kv * f), v(be, n * kv * f), gate(be, n * ff * f), up(be, n * ff * f),
      sel(be, batch * rows * d * f);
  be.embedding(wte_.data, wte_.dtype, d, ids, n, h.as());
  for (const Layer& L : layers_) {
    check_cancel();
    // Attention sub-block (pre-norm).
    be.rmsnorm(h.as(), n, d, L.attn_norm.data, L.attn_norm.dtype, eps, x.as());
    be.gemm(x.as(), n, L.q, q.as());
    be.gemm(x.as(), n, L.k, k.as());
    be.gemm(x.as(), n, L.v, v.as());
    for (int64_t b = 0; b < batch; ++b) {
      be.rope(q.as() + b * len * d, len, spec_.n_heads, hd, 0, rope_);
      be.rope(k.as() + b * len * kv, len, spec_.n_kv_heads, hd, 0, rope_);
      be.attention(q.as() + b * len * d, k.as() + b * len * kv, v.as() + b * len * kv,
                   att.as() + b * len * d, len, len, spec_.n_heads, spec_.n_kv_heads, hd, 0,
                   spec_.causal);
    }
    be.gemm(att.as(), n, L.o, x.as());
    be.add(h.as(), x.as(), n * d);
    // SwiGLU MLP sub-block.
    be.rmsnorm(h.as(), n, d, L.ff_norm.data, L.ff_norm.dtype, eps, x.as());
    be.gemm(x.as(), n, L.gate, gate.as());
    be.gemm(x.as(), n, L.up, up.as());
    be.swiglu(gate.as(), up.as(), gate.as(), n * ff);
    be.gemm(gate.as(), n, L.down, x.as());
    be.add(h.as(), x.as(), n * d);
  }
  check_cancel();
  // Final norm and LM head on the requested rows only.
  for (int64_t b = 0; b < batch; ++b)
    be.rmsnorm(h.as() + (b * len + row0) * d, rows, d, ln_f_.data, ln_f_.dtype, eps,
               sel.as() + b * rows * d);
  be.gemm(sel.as(), batch * rows, head_, logits);
}

}  // namespace difflm
