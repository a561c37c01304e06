// The LLaDA denoiser (GSAI-ML/LLaDA-8B layout, any size read from config.json): a LLaMA
// decoder without the causal mask. Tensor names, shapes and the forward follow the authors'
// modeling_llada.py; see shared/design/notes/masked_dlm.md §2.1-2.4.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../backend.h"
#include "../safetensors.h"

namespace difflm {

// Checkpoint layouts of the same pre-norm SwiGLU/RoPE transformer: LLaDA's names
// (bidirectional denoiser) and Hugging Face Llama/Qwen2's (the AR baseline; Dream, a
// bidirectional Qwen2, with q/k/v biases).
enum class Layout { Llada, Llama };

struct LladaSpec {
  Layout layout = Layout::Llada;
  int64_t d_model = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, mlp_hidden = 0;
  int64_t vocab = 0, max_seq_len = 0;
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  bool weight_tying = false;
  bool causal = false;  // true turns the same block into a causal LM (AR baseline)
  // q/k/v projections have biases (`…{q,k,v}_proj.bias`, Qwen2 and Dream); Llama layout only.
  bool qkv_bias = false;
  // Dream's logits shift (notes masked_dlm.md §3.3): canvas position p is predicted by the
  // output of position p - 1 (position 0 by its own), as the model was trained from an AR one.
  bool shift_logits = false;

  int64_t head_dim() const { return d_model / n_heads; }
  // Throws EngineError(InvalidArgument) naming the field when the spec is inconsistent.
  void validate() const;
};

// Called between layers; throws to stop (cancellation).
using CheckCancel = std::function<void()>;

// Keys and values of every layer for positions [0, len) of one sequence, in backend memory:
// [n_layers][capacity][n_kv_heads * head_dim] each, for left-to-right decoding.
struct KvCache {
  Buffer k, v;
  int64_t capacity = 0, len = 0;
};

class LladaModel {
 public:
  // Binds every tensor of the checkpoint, checking names and shapes, and prepares them on
  // `be` (uploaded to a GPU; the mapping itself on the CPU). The model runs on `be` only.
  LladaModel(const LladaSpec& spec, const WeightStore& weights, Backend& be);

  const LladaSpec& spec() const { return spec_; }

  // One forward over `batch` sequences of `len` tokens (host ids, row-major [batch][len]).
  // Writes logits of positions [row0, row1) of each sequence to `logits` (backend memory,
  // [batch][row1 - row0][vocab]). Only those rows go through the LM head. These are the
  // network's outputs at those positions (what Hugging Face's model returns), also with
  // shift_logits.
  void forward(const int32_t* ids, int64_t batch, int64_t len, int64_t row0, int64_t row1,
               float* logits, const CheckCancel& check_cancel) const;
  // The same with the ids already in backend memory (the decode loop's device-resident canvas);
  // they are not range-checked here. Unlike forward(), with spec().shift_logits the logits of
  // canvas position p are the output at p - 1 (at 0 for p = 0), as a decode loop wants them.
  void forward_resident(const int32_t* ids, int64_t batch, int64_t len, int64_t row0, int64_t row1,
                        float* logits, const CheckCancel& check_cancel) const;

  // A cache for up to `capacity` positions (capacity <= max_sequence_length).
  KvCache make_cache(int64_t capacity) const;
  // Causal forward of n_new tokens (host ids) at positions [cache.len, cache.len + n_new),
  // appending their keys and values to the cache; writes the logits of the last position to
  // `logits` (backend memory, [vocab]). The model must be causal.
  void forward_cached(const int32_t* ids, int64_t n_new, KvCache& cache, float* logits,
                      const CheckCancel& check_cancel) const;
  // Forward of the positions [w0, w1) of one sequence (ids[0 .. w1 - w0), backend memory)
  // against a KV cache: their keys and values (after rotary) are written to cache rows [w0, w1),
  // then attention reads cache rows [0, kv_end) (causal models: [0, w1) with the causal mask).
  // Rows of the cache outside the window must already hold the keys and values the caller wants
  // to reuse (Fast-dLLM's prefix and dual caches, notes masked_dlm.md §4.1). Writes the logits of
  // positions [row0, row1) (inside the window) to `logits` ([row1 - row0][vocab]). cache.len is
  // not changed. With spec().shift_logits, rows are shifted as in forward_resident, the
  // window's first position taking its own output (Fast-dLLM's Dream code does the same).
  void forward_window(const int32_t* ids, int64_t w0, int64_t w1, int64_t kv_end, KvCache& cache,
                      int64_t row0, int64_t row1, float* logits,
                      const CheckCancel& check_cancel) const;

  // Bytes of weights the model reads (what a GPU backend uploads).
  static size_t weight_bytes(const LladaSpec& spec, const WeightStore& weights);

  // Bytes of activation buffers one forward of this shape allocates.
  size_t work_bytes(int64_t batch, int64_t len, int64_t rows) const;

 private:
  // A vector of weights (norm scale, bias, or the embedding table's data).
  struct Norm {
    const void* data;
    DType dtype;
  };
  struct Layer {
    Norm attn_norm, ff_norm;
    Norm q_bias{}, k_bias{}, v_bias{};  // data nullptr without qkv_bias
    WeightMatrix q, k, v, o, gate, up, down;
  };
  // Throws EngineError(InvalidArgument) when the shape or row window is out of range.
  void check_shape(int64_t batch, int64_t len, int64_t row0, int64_t row1) const;
  // Fills q [n][d], k and v [n][kv] from the normed input x [n][d] of layer L.
  void project_qkv(const Layer& L, const float* x, int64_t n, float* q, float* k, float* v) const;
  // The rest of layer L once attention has written `att` [n][d]: output projection and
  // residual, then the SwiGLU MLP and residual, updating h [n][d]; x, gate, up are scratch.
  void finish_layer(const Layer& L, const float* att, int64_t n, float* h, float* x, float* gate,
                    float* up) const;
  // Final norm and LM head of `rows` rows of h [rows][d] into logits; sel is [rows][d] scratch.
  void head(const float* h, int64_t rows, float* sel, float* logits) const;
  // head() for canvas positions [row0, row1) of a window whose hidden states h start at position
  // w0: the rows themselves, or with `shift` those one before (the window's first row for its
  // first position).
  void head_rows(const float* h, int64_t w0, int64_t row0, int64_t row1, bool shift, float* sel,
                 float* logits) const;
  // The forward of forward() and forward_resident(); `shift` as in head_rows.
  void run(const int32_t* ids, int64_t batch, int64_t len, int64_t row0, int64_t row1, bool shift,
           float* logits, const CheckCancel& check_cancel) const;

  LladaSpec spec_;
  Backend& be_;
  Norm wte_, ln_f_;
  WeightMatrix head_;
  std::vector<Layer> layers_;
  Buffer rope_storage_;
  RopeTable rope_;
};

}  // namespace difflm
