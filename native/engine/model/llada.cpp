#include "llada.h"

#include <new>

#include "../errors.h"

namespace difflm {

namespace {

WeightMatrix matrix(const TensorView& t) {
  return WeightMatrix{t.data, t.dtype, t.shape[0], t.shape[1]};
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

LladaModel::LladaModel(const LladaSpec& spec, const WeightStore& w) : spec_(spec) {
  spec_.validate();
  const int64_t d = spec_.d_model, kv = spec_.n_kv_heads * spec_.head_dim();
  wte_ = &w.require("model.transformer.wte.weight", {spec_.vocab, d});
  ln_f_ = &w.require("model.transformer.ln_f.weight", {d});
  head_ = spec_.weight_tying
              ? matrix(*wte_)
              : matrix(w.require("model.transformer.ff_out.weight", {spec_.vocab, d}));
  for (int64_t i = 0; i < spec_.n_layers; ++i) {
    Layer L;
    L.attn_norm = &w.require(block_name(i, "attn_norm"), {d});
    L.ff_norm = &w.require(block_name(i, "ff_norm"), {d});
    L.q = matrix(w.require(block_name(i, "q_proj"), {d, d}));
    L.k = matrix(w.require(block_name(i, "k_proj"), {kv, d}));
    L.v = matrix(w.require(block_name(i, "v_proj"), {kv, d}));
    L.o = matrix(w.require(block_name(i, "attn_out"), {d, d}));
    L.gate = matrix(w.require(block_name(i, "ff_proj"), {spec_.mlp_hidden, d}));
    L.up = matrix(w.require(block_name(i, "up_proj"), {spec_.mlp_hidden, d}));
    L.down = matrix(w.require(block_name(i, "ff_out"), {d, spec_.mlp_hidden}));
    layers_.push_back(L);
  }
  const int64_t half = spec_.head_dim() / 2;
  rope_storage_.resize(static_cast<size_t>(2 * spec_.max_seq_len * half));
  rope_ = RopeTable{spec_.max_seq_len, half, rope_storage_.data(),
                    rope_storage_.data() + spec_.max_seq_len * half};
  rope_fill(rope_, spec_.rope_theta);
}

size_t LladaModel::work_bytes(int64_t batch, int64_t len, int64_t rows) const {
  const int64_t n = batch * len, d = spec_.d_model, kv = spec_.n_kv_heads * spec_.head_dim();
  const int64_t floats = n * (4 * d + 2 * kv + 2 * spec_.mlp_hidden) + batch * rows * d;
  return static_cast<size_t>(floats) * sizeof(float);
}

void LladaModel::forward(Backend& be, const int32_t* ids, int64_t batch, int64_t len, int64_t row0,
                         int64_t row1, float* logits, const CheckCancel& check_cancel) const {
  if (len <= 0 || len > spec_.max_seq_len || row0 < 0 || row1 > len || row0 >= row1 || batch <= 0)
    throw EngineError(ErrorCode::InvalidArgument,
                      "forward: sequence length " + std::to_string(len) + " or rows [" +
                          std::to_string(row0) + ", " + std::to_string(row1) +
                          ") out of range (max_sequence_length " +
                          std::to_string(spec_.max_seq_len) + ")");
  for (int64_t i = 0; i < batch * len; ++i)
    if (ids[i] < 0 || ids[i] >= spec_.vocab)
      throw EngineError(ErrorCode::InvalidArgument, "token id " + std::to_string(ids[i]) +
                                                        " at position " + std::to_string(i) +
                                                        " is outside the vocabulary (" +
                                                        std::to_string(spec_.vocab) + " rows)");
  const int64_t n = batch * len, d = spec_.d_model, hd = spec_.head_dim();
  const int64_t kv = spec_.n_kv_heads * hd, ff = spec_.mlp_hidden;
  const float eps = static_cast<float>(spec_.rms_eps);
  std::vector<float> h, x, q, k, v, att, gate, up;
  try {
    h.resize(n * d), x.resize(n * d), q.resize(n * d), att.resize(n * d);
    k.resize(n * kv), v.resize(n * kv), gate.resize(n * ff), up.resize(n * ff);
  } catch (const std::bad_alloc&) {
    throw EngineError(ErrorCode::OutOfMemory,
                      "out of memory allocating " + std::to_string(work_bytes(batch, len, 0)) +
                          " bytes of activations for a forward of " + std::to_string(n) + " rows");
  }
  be.embedding(wte_->data, wte_->dtype, d, ids, n, h.data());
  for (const Layer& L : layers_) {
    check_cancel();
    // Attention sub-block (pre-norm).
    be.rmsnorm(h.data(), n, d, L.attn_norm->data, L.attn_norm->dtype, eps, x.data());
    be.gemm(x.data(), n, L.q, q.data());
    be.gemm(x.data(), n, L.k, k.data());
    be.gemm(x.data(), n, L.v, v.data());
    for (int64_t b = 0; b < batch; ++b) {
      be.rope(q.data() + b * len * d, len, spec_.n_heads, hd, 0, rope_);
      be.rope(k.data() + b * len * kv, len, spec_.n_kv_heads, hd, 0, rope_);
      be.attention(q.data() + b * len * d, k.data() + b * len * kv, v.data() + b * len * kv,
                   att.data() + b * len * d, len, len, spec_.n_heads, spec_.n_kv_heads, hd, 0,
                   spec_.causal);
    }
    be.gemm(att.data(), n, L.o, x.data());
    be.add(h.data(), x.data(), n * d);
    // SwiGLU MLP sub-block.
    be.rmsnorm(h.data(), n, d, L.ff_norm->data, L.ff_norm->dtype, eps, x.data());
    be.gemm(x.data(), n, L.gate, gate.data());
    be.gemm(x.data(), n, L.up, up.data());
    be.swiglu(gate.data(), up.data(), gate.data(), n * ff);
    be.gemm(gate.data(), n, L.down, x.data());
    be.add(h.data(), x.data(), n * d);
  }
  check_cancel();
  // Final norm and LM head on the requested rows only.
  const int64_t rows = row1 - row0;
  std::vector<float> sel(static_cast<size_t>(batch * rows * d));
  for (int64_t b = 0; b < batch; ++b)
    be.rmsnorm(h.data() + (b * len + row0) * d, rows, d, ln_f_->data, ln_f_->dtype, eps,
               sel.data() + b * rows * d);
  be.gemm(sel.data(), batch * rows, head_, logits);
}

}  // namespace difflm
