// CUDA kernels of the engine, as host functions over device pointers. Each has a CPU twin in
// native/engine/cpu/ that defines what it computes and that the GPU check compares it with.
// Every launch is checked: a CUDA failure throws difflm::EngineError(Internal) naming the call.
// No CUDA types appear here, so engine code can include it from any C++ file.
#pragma once

#include <cstdint>

#include "dtype.h"

namespace difflm {
namespace cuda {

using Stream = void*;  // a cudaStream_t

class Blas;  // blas.h: cuBLAS loaded at run time

// C[M x N] = A[M x K] . W[N x K]^T; A, C float32; W F32, F16 or BF16 (row-major, as in the
// checkpoint). BF16/F16 weights run on tensor cores with A rounded to the weight's type and
// float32 accumulation: on cuBLAS when `blas` is given (compute capability 8.0 and up), else on
// our own kernels; F32 weights use float32 FMA. `scratch` holds M*K 16-bit values.
// CPU twin: gemm() in cpu/gemm.h (its avx512bf16 path rounds A the same way for BF16).
void gemm(const float* A, int64_t M, int64_t K, const void* W, DType wt, int64_t N, float* C,
          uint16_t* scratch, Stream s, Blas* blas = nullptr);
// The 16-bit product alone, on an A16 [M x K] already rounded to W's type (BF16 or F16), as
// gemm() rounds A into scratch: C = A16 . W^T. For callers that reuse one rounded A, and for
// timing the product without the pre-pass.
void gemm_rounded(const uint16_t* A16, int64_t M, int64_t K, const void* W, DType wt, int64_t N,
                  float* C, Stream s, Blas* blas = nullptr);

// out = x / sqrt(mean(x^2) + eps) * w per row; CPU twin: rmsnorm() in cpu/ops.h.
void rmsnorm(const float* x, int64_t rows, int64_t dim, const void* w, DType wt, float eps,
             float* out, Stream s);

// Rotate-half rotary embedding in place, tables cos/sin [max_pos][head_dim/2] on the device;
// row r is at position pos0 + r. CPU twin: rope_apply().
void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t pos0, const float* cos,
          const float* sin, Stream s);

// out = silu(gate) * up (out may alias gate); x += y. CPU twins: swiglu(), add_inplace().
void swiglu(const float* gate, const float* up, float* out, int64_t n, Stream s);
void add(float* x, const float* y, int64_t n, Stream s);
// x[r][j] += bias[j] for the rows of x[rows][dim] (CPU twin: add_bias_rows, cpu/ops.h).
void add_bias(float* x, int64_t rows, int64_t dim, const void* bias, DType bt, Stream s);

// out[i] = table[ids[i]] as float32; ids on the device. CPU twin: embedding_gather().
void embedding(const void* table, DType dt, int64_t dim, const int32_t* ids, int64_t n, float* out,
               Stream s);

// Flash-style scaled dot-product attention of one sequence (no score matrix in memory):
// q [nq][n_heads][hd] at positions q_pos0.., k/v [nk][n_kv_heads][hd]; grouped KV heads;
// causal masks keys after the query position. hd <= 256. CPU twin: attention().
// Two kernels: CUDA cores (float32) and tensor cores at float32 accuracy (3xTF32; compute
// capability 8.0+, hd <= 128, its tiles in shared memory). `which`: Auto runs the process
// default (below) where it can run, else the CUDA-core kernel; TensorCores where it cannot run
// is an error. The GPU check names each to test and time both.
enum class AttentionKernel { Auto, CudaCores, TensorCores };
void attention(const float* q, const float* k, const float* v, float* out, int64_t nq, int64_t nk,
               int64_t n_heads, int64_t n_kv_heads, int64_t hd, int64_t q_pos0, bool causal,
               Stream s, AttentionKernel which = AttentionKernel::Auto);
// Whether the tensor-core attention kernel can run for head size hd on the current device.
bool attention_tensor_cores_available(int64_t hd);
// The kernel Auto prefers, for the whole process: CUDA cores until the tensor-core kernel has
// been timed on a GPU (bench/RESULTS.md). The GPU check runs its end-to-end cases with each.
// `which` must be CudaCores or TensorCores.
void set_attention_default(AttentionKernel which);
AttentionKernel attention_default();

// Per-row categorical sampling over logits [rows][vocab] (float32, modified in place as the
// CPU twin does: EOS/EOT set to -inf when asked), fused: candidate by argmax (temperature 0)
// or Gumbel-max with Philox noise keyed by (seed, step, positions[r], token); confidence =
// softmax probability of the candidate in float64 with LLaDA's EOS/EOT rules; no probability
// matrix is written. tokens/confidence are device arrays of `rows`.
// At temperature > 0, top_k / top_p filter the candidate draw as apply_top_k_top_p() in
// decode/sampling.h defines it (exactly the same kept set, ties included); the confidence stays
// the probability over the unfiltered logits and the filter writes nothing to the logits. With
// top_k = 0 and top_p = 1 (or at temperature 0) the results are those of the unfiltered kernel.
// CPU twin: sample_row() in decode/masked.h (same RNG: rng.h); with a filter,
// sample_row_filtered() in decode/sampling.h.
struct SampleParams {
  double temperature = 0;
  uint64_t seed = 0;
  int64_t step = 0;
  int32_t eos_id = -1, eot_id = -1;
  bool logits_eos_inf = false, confidence_eos_eot_inf = false;
  bool want_confidence = true;  // false: random remasking, confidence not needed
  int64_t top_k = 0;            // 0 (or >= vocab): off
  double top_p = 1.0;           // 1: off; must be in (0, 1]
  // When set (device memory): rows whose canvas[positions[r]] != mask_id are skipped, their
  // tokens and confidence left as they are (committed positions, as the CPU twin skips them).
  const int32_t* canvas = nullptr;
  int32_t mask_id = 0;
};
void sample_rows(float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                 const SampleParams& p, int32_t* tokens, double* confidence, Stream s);

// Dream's candidates (CPU twin: dream_sample_row, decode/dream.h), one block per row: token and
// confidence of each row whose canvas[positions[r]] is mask_id (others are skipped). `alg` is
// DreamAlg's value. The logits are not modified. A NaN or +inf logit is an EngineError naming
// the position, as for sample_rows.
struct DreamParams {
  double temperature = 0;
  uint64_t seed = 0;
  int64_t step = 0;
  int64_t top_k = 0;   // 0 (or >= vocab): off
  double top_p = 1.0;  // 1: off; must be in (0, 1]
  int alg = 3;         // 0 origin, 1 maskgit_plus, 2 topk_margin, 3 entropy, 4 confidence_threshold
  double alg_temp = 0;
  const int32_t* canvas = nullptr;  // device memory
  int32_t mask_id = 0;
};
void dream_rows(const float* logits, int64_t rows, int64_t vocab, const int64_t* positions,
                const DreamParams& p, int32_t* tokens, double* confidence, Stream s);

// Unmasking selection on the device: among positions [0, n) with eligible[i] != 0, commit the
// k with the largest confidence (ties: lower position first) by writing canvas[i] = tokens[i],
// and list them in committed[0..k) (positions, ascending by rank). CPU twin: the selection in
// generate_masked().
void select_commit(const double* confidence, const int32_t* tokens, const uint8_t* eligible,
                   int64_t n, int64_t k, int32_t* canvas, int32_t* committed, Stream s);

// Threshold selection on the device (parallel decoding): among positions [0, n) with
// eligible[i] != 0, commit every one with confidence[i] >= threshold, and at least the most
// confident one (ties: lower position first), by writing canvas[i] = tokens[i]; list them in
// committed[0..count) by rank (confidence desc, position asc; committed has room for n) and write
// count to *n_committed (device; 0 iff nothing is eligible). Entries of committed from count on
// are left as they were. CPU twin: select_threshold() in decode/select.h.
void select_threshold(const double* confidence, const int32_t* tokens, const uint8_t* eligible,
                      int64_t n, double threshold, int32_t* canvas, int32_t* committed,
                      int32_t* n_committed, Stream s);

// KNN rounding: for each of `rows` vectors x [rows][dim], the index of the nearest row of the
// embedding table E [vocab][dim] by L2 distance (cosine when `cosine`), as a tiled GEMM with a
// fused per-row argmax; e_norms [vocab] are the precomputed squared L2 norms of E's rows
// (or the norms, for cosine). CPU twin: knn_round() in cpu/knn.h.
void knn_round(const float* x, int64_t rows, int64_t dim, const void* E, DType et, int64_t vocab,
               const float* e_norms, bool cosine, int32_t* out, Stream s);

}  // namespace cuda
}  // namespace difflm

namespace difflm {
namespace cuda {

// c = u + scale * (c - u), element-wise (classifier-free guidance). CPU twin:
// CpuBackend::cfg_mix.
void cfg_mix(float* c, const float* u, int64_t n, float scale, Stream s);

}  // namespace cuda
}  // namespace difflm

namespace difflm {
namespace cuda {

// Helpers of the device-resident masked loop (cuda/loop.cu). CPU twins: the loop's host code in
// CpuBackend::sample_candidates / commit_top_k.
// out[i] = start + i
void iota64(int64_t* out, int64_t n, int64_t start, Stream s);
// confidence[i] = uniform01(seed, RngStream::Remask, step, row0 + i, 0) (random remasking)
void remask_confidence(double* confidence, int64_t n, int64_t row0, uint64_t seed, int64_t step,
                       Stream s);
// eligible[i] = canvas[i] == mask_id
void mask_eligible(const int32_t* canvas, int64_t n, int32_t mask_id, uint8_t* eligible, Stream s);
// out[j] = canvas[idx[j]] for j < k (idx entries < 0 give -1)
void gather_tokens(const int32_t* canvas, const int32_t* idx, int64_t k, int32_t* out, Stream s);

}  // namespace cuda
}  // namespace difflm
