// GPU checks of gemm and attention against their CPU twins (cpu/gemm.h with GemmPath::Portable,
// cpu/ops.h attention), then timings at LLaDA-8B shapes. Tolerances, and why:
//  - gemm F32 weights: 1e-5 rel L2 (both float32; only the summation order differs, ~1e-7).
//  - gemm F16/BF16 weights: the GPU rounds A to the weight's type (round-to-nearest-even, as
//    f32_to_bf16 / f32_to_f16). Against the CPU on A pre-rounded the same way on the host, the
//    inputs are identical and only the sums differ: the tensor cores round each mma's sum toward
//    zero, an error that grows with K (on the H200: 4.05e-6 at K 4096, 1.34e-5 at K 12288; the
//    emulator models it), checked at 1e-4 (tighter than the 1e-2 so that a dropped K
//    tail, ~1/K of the sum, still fails).
//    Against the CPU on the unrounded A: the bound, 1e-2 (A's rounding costs ~1e-3).
//  - attention: 1e-5 (float32 everywhere, accurate expf; online vs two-pass softmax ~1e-7). The
//    tensor-core kernel's 3xTF32 products (cuda/mma_tf32.cuh) are within a few 1e-7 of float32
//    ones, so it is held to the same bound; plain TF32 (~1e-3) would fail it. Both kernels run on
//    every shape the tensor-core one can run (each named explicitly, not through Auto).
// The LLaDA shapes are too slow for the CPU reference in full, so they are validated on a sample:
// gemm on 16 rows spread over M (first and last included) x 3 slabs of 128 columns (first,
// middle, last) with full K; attention on the first and last 32 queries with all keys.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "check.h"
#include "cpu/gemm.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "dtype.h"
#include "errors.h"
#include "kernels.h"

using namespace difflm_gpu;
using difflm::DType;

namespace {

uint16_t to16(float f, DType dt) {
  return dt == DType::BF16 ? difflm::f32_to_bf16(f) : difflm::f32_to_f16(f);
}
float from16(uint16_t h, DType dt) {
  return dt == DType::BF16 ? difflm::bf16_to_f32(h) : difflm::f16_to_f32(h);
}

// Weight bytes of `w` in type dt (F32: the floats themselves).
std::vector<uint8_t> weight_bytes(const std::vector<float>& w, DType dt) {
  std::vector<uint8_t> out(w.size() * difflm::dtype_size(dt));
  if (dt == DType::F32) {
    std::memcpy(out.data(), w.data(), out.size());
  } else {
    for (size_t i = 0; i < w.size(); ++i) {
      const uint16_t h = to16(w[i], dt);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

// A rounded to the 16-bit type and back, as the GPU's pre-pass does.
std::vector<float> rounded(const std::vector<float>& a, DType dt) {
  std::vector<float> r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = from16(to16(a[i], dt), dt);
  return r;
}

std::vector<float> cpu_gemm(const std::vector<float>& A, int64_t M, const void* W, DType dt,
                            int64_t N, int64_t K, difflm::ThreadPool* pool = nullptr) {
  difflm::WeightMatrix wm;
  wm.data = W;
  wm.dtype = dt;
  wm.rows = N;
  wm.cols = K;
  std::vector<float> C(static_cast<size_t>(M * N));
  difflm::gemm(A.data(), M, wm, C.data(), pool, difflm::GemmPath::Portable);
  return C;
}

// The GPU gemm on fresh buffers; `w_off` / `s_off` shift W and scratch by that many elements
// (2-byte alignment for 16-bit types: forces the generic loader).
std::vector<float> gpu_gemm(const std::vector<float>& A, int64_t M, int64_t K,
                            const std::vector<uint8_t>& W, DType dt, int64_t N, int w_off = 0,
                            int s_off = 0, difflm::cuda::Blas* blas = nullptr) {
  const size_t es = difflm::dtype_size(dt);
  DeviceBuffer dA(A.size() * 4), dW(W.size() + 16 * es), dC(static_cast<size_t>(M * N) * 4),
      dS(static_cast<size_t>(M * K + 16) * 2);
  dA.upload(A.data(), A.size() * 4);
  char* w = static_cast<char*>(dW.get()) + w_off * es;
  CK(cudaMemcpy(w, W.data(), W.size(), cudaMemcpyHostToDevice));
  dC.poison();
  dS.poison();  // the pre-pass must write every scratch element the GEMM reads
  difflm::cuda::gemm(dA.as<float>(), M, K, w, dt, N, dC.as<float>(), dS.as<uint16_t>() + s_off,
                     nullptr, blas);
  return download_vec<float>(dC, static_cast<size_t>(M * N));
}

std::string gemm_name(DType dt, int64_t M, int64_t N, int64_t K) {
  return std::string("gemm ") + difflm::dtype_name(dt) + " M=" + std::to_string(M) +
         " N=" + std::to_string(N) + " K=" + std::to_string(K);
}

// One shape, every check that applies to dt.
void check_gemm(std::mt19937& rng, DType dt, int64_t M, int64_t N, int64_t K, bool raw_too,
                int w_off = 0, int s_off = 0) {
  const auto A = random_floats(static_cast<size_t>(M * K), rng);
  const auto W = weight_bytes(random_floats(static_cast<size_t>(N * K), rng), dt);
  const auto got = gpu_gemm(A, M, K, W, dt, N, w_off, s_off);
  std::string name = gemm_name(dt, M, N, K);
  if (w_off || s_off)
    name += " (W +" + std::to_string(w_off) + ", scratch +" + std::to_string(s_off) + " elems)";
  if (dt == DType::F32) {
    validate(name, got, cpu_gemm(A, M, W.data(), dt, N, K), 1e-5);
    return;
  }
  const auto want = cpu_gemm(rounded(A, dt), M, W.data(), dt, N, K);
  validate(name + " vs CPU on rounded A", got, want, 1e-4);
  if (raw_too) validate(name + " vs CPU on f32 A", got, cpu_gemm(A, M, W.data(), dt, N, K), 1e-2);
  // The same product on cuBLAS, the 16-bit path the backend takes when it loads.
  if (difflm::cuda::Blas* blas = check_blas())
    validate(name + " cuBLAS vs CPU on rounded A", gpu_gemm(A, M, K, W, dt, N, w_off, s_off, blas),
             want, 1e-4);
}

// Copies `total` bytes of a repeated host block to the device.
void upload_tiled(void* dst, const void* block, size_t block_bytes, size_t total) {
  for (size_t off = 0; off < total; off += block_bytes)
    CK(cudaMemcpy(static_cast<char*>(dst) + off, block, std::min(block_bytes, total - off),
                  cudaMemcpyHostToDevice));
}

int cpu_threads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

GPU_CASE(gemm_awkward_shapes) {
  std::mt19937 rng(201);
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    for (int64_t M : {1, 7, 33, 130})
      for (int64_t N : {5, 64, 257})
        for (int64_t K : {3, 16, 100, 259}) check_gemm(rng, dt, M, N, K, M == 130 && N == 257);
}

// Paths the grid above does not reach: the cp.async pipeline over many K tiles (K % 8 == 0) and
// the generic loader over many (K odd), several block tiles in M and N, K tails that leave a
// whole 8-element chunk or half a tile empty, misaligned W / scratch pointers, and M past 16
// row tiles.
GPU_CASE(gemm_pipeline_and_alignment) {
  std::mt19937 rng(202);
  for (DType dt : {DType::F16, DType::BF16}) {
    check_gemm(rng, dt, 130, 257, 1000, true);
    check_gemm(rng, dt, 130, 257, 1001, false);
    check_gemm(rng, dt, 300, 300, 64, false);
    check_gemm(rng, dt, 7, 5, 8, false);
    check_gemm(rng, dt, 33, 64, 24, false);
    check_gemm(rng, dt, 130, 257, 40, false);
    check_gemm(rng, dt, 33, 64, 16, false, 1, 0);
    check_gemm(rng, dt, 33, 64, 1000, false, 0, 1);
    check_gemm(rng, dt, 33, 64, 1000, false, 8, 8);  // 16-byte aligned again: cp.async path
    // More than 16 row tiles: the grouped block raster's second, partial group of rows.
    check_gemm(rng, dt, 2100, 257, 64, false);
  }
  check_gemm(rng, DType::F32, 300, 300, 1000, false);
  check_gemm(rng, DType::F32, 129, 65, 17, false, 1, 0);
}

GPU_CASE_LARGE(gemm_llada_bf16) {
  std::mt19937 rng(203);
  difflm::ThreadPool pool(cpu_threads());
  // Inputs are a 4 Mi-element random block repeated (row-major index i -> block[i % P]): host
  // generation of 500M values would dominate the run.
  const size_t P = size_t(1) << 22;
  const auto a_block = random_floats(P, rng);
  std::vector<uint16_t> w_block(P);
  for (auto& h : w_block)
    h = difflm::f32_to_bf16(std::uniform_real_distribution<float>(-1, 1)(rng));

  const int64_t NK[4][2] = {{4096, 4096}, {12288, 4096}, {4096, 12288}, {126464, 4096}};
  for (int64_t M : {512, 2048})
    for (const auto& nk : NK) {
      const int64_t N = nk[0], K = nk[1];
      DeviceBuffer dA(static_cast<size_t>(M * K) * 4), dW(static_cast<size_t>(N * K) * 2),
          dC(static_cast<size_t>(M * N) * 4), dS(static_cast<size_t>(M * K) * 2);
      upload_tiled(dA.get(), a_block.data(), P * 4, dA.bytes());
      upload_tiled(dW.get(), w_block.data(), P * 2, dW.bytes());
      // Our own kernels, then cuBLAS when it loads; both with the A pre-pass, as the backend.
      std::vector<difflm::cuda::Blas*> impls = {nullptr};
      if (difflm::cuda::Blas* blas = check_blas()) impls.push_back(blas);
      for (difflm::cuda::Blas* blas : impls) {
        dC.poison();
        auto run = [&] {
          difflm::cuda::gemm(dA.as<float>(), M, K, dW.get(), DType::BF16, N, dC.as<float>(),
                             dS.as<uint16_t>(), nullptr, blas);
        };
        run();
        CK(cudaDeviceSynchronize());

        // Sample: 16 rows x 3 column slabs of 128.
        const int64_t rows_n = 16, slab = 128;
        const int64_t col0[3] = {0, N / 2 - slab / 2, N - slab};
        std::vector<float> a_sub(static_cast<size_t>(rows_n * K));
        std::vector<uint16_t> w_sub(static_cast<size_t>(3 * slab * K));
        const auto sampled = [&] {
          std::vector<float> got(static_cast<size_t>(rows_n * 3 * slab));
          for (int64_t i = 0; i < rows_n; ++i) {
            const int64_t m = i * (M - 1) / (rows_n - 1);
            for (int s = 0; s < 3; ++s)
              CK(cudaMemcpy(got.data() + i * 3 * slab + s * slab, dC.as<float>() + m * N + col0[s],
                            slab * 4, cudaMemcpyDeviceToHost));
          }
          return got;
        };
        const auto got = sampled();
        for (int64_t i = 0; i < rows_n; ++i) {
          const int64_t m = i * (M - 1) / (rows_n - 1);
          for (int64_t k = 0; k < K; ++k)  // rounded to bf16 as the GPU does
            a_sub[i * K + k] = from16(to16(a_block[(m * K + k) % P], DType::BF16), DType::BF16);
        }
        for (int s = 0; s < 3; ++s)
          for (int64_t j = 0; j < slab; ++j)
            for (int64_t k = 0; k < K; ++k)
              w_sub[(s * slab + j) * K + k] = w_block[((col0[s] + j) * K + k) % P];
        const auto want = cpu_gemm(a_sub, rows_n, w_sub.data(), DType::BF16, 3 * slab, K, &pool);
        const std::string shape =
            "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
        const std::string kernel = blas ? "gemm bf16 cuBLAS" : "gemm bf16";
        validate(kernel + " " + shape + " (16 rows x 384 cols sampled, rounded A)", got, want,
                 1e-4);

        const double ms = time_ms(run, 10);
        const double bytes = M * K * (4.0 + 2 * 2) + N * K * 2.0 + M * N * 4.0;
        report(kernel, shape, ms, 2.0 * M * N * K, bytes);
        // The product alone, on the A the pre-pass left in scratch (the GEMM target's figure).
        dC.poison();
        const double ms16 = time_ms(
            [&] {
              difflm::cuda::gemm_rounded(dS.as<uint16_t>(), M, K, dW.get(), DType::BF16, N,
                                         dC.as<float>(), nullptr, blas);
            },
            10);
        validate(kernel + " " + shape + " on rounded A16 (sampled)", sampled(), want, 1e-4);
        report(kernel + " A16", shape, ms16, 2.0 * M * N * K,
               M * K * 2.0 + N * K * 2.0 + M * N * 4.0);
      }
    }
}

namespace {

struct AttnShape {
  int64_t nq, nk, heads, kv_heads, hd, q_pos0;
  bool causal;
};

using difflm::cuda::AttentionKernel;

const char* kernel_name(AttentionKernel which) {
  return which == AttentionKernel::TensorCores ? "tensor cores" : "CUDA cores";
}

// The timing table's name: the CUDA-core kernel as before, the tensor-core one as 3xTF32.
std::string attn_label(AttentionKernel which, bool causal) {
  return std::string(which == AttentionKernel::TensorCores ? "attention 3xTF32" : "attention f32") +
         (causal ? " causal" : "");
}

std::string attn_name(const AttnShape& s, AttentionKernel which) {
  return std::string("attention (") + kernel_name(which) + ") nq=" + std::to_string(s.nq) +
         " nk=" + std::to_string(s.nk) + " H=" + std::to_string(s.heads) + "/" +
         std::to_string(s.kv_heads) + " hd=" + std::to_string(s.hd) +
         (s.causal ? " causal q_pos0=" + std::to_string(s.q_pos0) : std::string(" full"));
}

// The kernels to check at head size hd: the CUDA-core one always (sm_75's and the fallback), the
// tensor-core one where it can run.
std::vector<AttentionKernel> kernels_for(int64_t hd) {
  if (difflm::cuda::attention_tensor_cores_available(hd))
    return {AttentionKernel::CudaCores, AttentionKernel::TensorCores};
  return {AttentionKernel::CudaCores};
}

// Random q/k/v of shape s, each CUDA attention kernel against the CPU's (poisoned output, F32
// tolerance); returns the mean time of a call of each in ms when `timed` (NaN on the emulator),
// else 0s.
struct AttnTimes {
  double cuda_cores = 0, tensor_cores = 0;
};
AttnTimes check_attention(const AttnShape& s, std::mt19937& rng, difflm::ThreadPool* pool,
                          bool timed) {
  const size_t qn = s.nq * s.heads * s.hd, kn = s.nk * s.kv_heads * s.hd;
  const auto q = random_floats(qn, rng, 2.f), k = random_floats(kn, rng, 2.f),
             v = random_floats(kn, rng);
  std::vector<float> want(qn);
  difflm::attention(q.data(), k.data(), v.data(), want.data(), s.nq, s.nk, s.heads, s.kv_heads,
                    s.hd, s.q_pos0, s.causal, pool);
  DeviceBuffer dq(qn * 4), dk(kn * 4), dv(kn * 4), dout(qn * 4);
  dq.upload(q.data(), qn * 4);
  dk.upload(k.data(), kn * 4);
  dv.upload(v.data(), kn * 4);
  AttnTimes times;
  for (AttentionKernel which : kernels_for(s.hd)) {
    dout.poison();
    const auto run = [&] {
      difflm::cuda::attention(dq.as<float>(), dk.as<float>(), dv.as<float>(), dout.as<float>(),
                              s.nq, s.nk, s.heads, s.kv_heads, s.hd, s.q_pos0, s.causal, nullptr,
                              which);
    };
    run();
    validate(attn_name(s, which), download_vec<float>(dout, qn), want, 1e-5);
    (which == AttentionKernel::TensorCores ? times.tensor_cores : times.cuda_cores) =
        timed ? time_ms(run, 10) : 0.0;
  }
  return times;
}

}  // namespace

GPU_CASE(attention_shapes) {
  std::mt19937 rng(301);
  const AttnShape shapes[] = {
      {37, 37, 4, 4, 64, 0, false},     // plain, partial query and key tiles
      {50, 50, 8, 2, 128, 0, true},     // GQA 4:1, causal from position 0
      {17, 80, 6, 3, 10, 63, true},     // causal with q_pos0: the last query sees every key
      {20, 64, 4, 4, 96, 5, true},      // causal: keys past the last query stay hidden
      {33, 33, 2, 1, 5, 0, true},       // odd hd, all heads on one KV head
      {70, 100, 4, 1, 256, 0, false},   // largest hd (sm_75: V read from global memory)
      {20, 90, 4, 2, 256, 40, true},    // the same, causal with GQA and a key tail
      {9, 129, 4, 2, 200, 120, true},   // hd not a multiple of 32, key tail of one
      {3, 1, 2, 2, 33, 0, false},       // a single key
      {130, 300, 2, 2, 128, 0, false},  // several query blocks and key tiles
      {64, 40, 3, 3, 32, 0, true},      // causal, nk < nq: late queries see all keys
      // One or two blocks, many keys: split across blockIdx.z and combined (attention_combine),
      // on the emulator's 4 SMs as on a GPU's 132.
      {1, 1000, 2, 1, 128, 999, true},   // a left-to-right decode step
      {32, 288, 1, 1, 128, 0, false},    // a dual-cache step (LLaDA's block and positions)
      {32, 4096, 2, 2, 64, 4000, true},  // causal, late rows: the last part partly hidden
      {5, 700, 1, 1, 40, 0, true},       // causal from 0: every part past the first hidden
      {7, 523, 2, 2, 96, 300, false},    // a key tail inside the last part
  };
  for (const AttnShape& s : shapes) check_attention(s, rng, nullptr, false);
  // Asking for the tensor-core kernel where it cannot run is an error, not a silent fallback.
  bool refused = false;
  DeviceBuffer x(200 * 4), y(200 * 4);
  try {
    difflm::cuda::attention(x.as<float>(), x.as<float>(), x.as<float>(), y.as<float>(), 1, 1, 1, 1,
                            200, 0, false, nullptr, AttentionKernel::TensorCores);
  } catch (const difflm::EngineError& e) {
    refused = std::string(e.what()).find("tensor-core kernel needs") != std::string::npos;
  }
  expect("attention: TensorCores at head_dim 200 is refused with a typed error", refused);
}

GPU_CASE_LARGE(attention_llada) {
  std::mt19937 rng(302);
  difflm::ThreadPool pool(cpu_threads());
  const int64_t H = 32, hd = 128, sub = 32;
  for (int64_t n : {512, 2048})
    for (bool causal : {false, true}) {
      const AttnShape s{n, n, H, H, hd, 0, causal};
      const size_t qn = n * H * hd;
      const auto q = random_floats(qn, rng, 2.f), k = random_floats(qn, rng, 2.f),
                 v = random_floats(qn, rng);
      DeviceBuffer dq(qn * 4), dk(qn * 4), dv(qn * 4), dout(qn * 4);
      dq.upload(q.data(), qn * 4);
      dk.upload(k.data(), qn * 4);
      dv.upload(v.data(), qn * 4);
      // CPU on the first and last `sub` queries (a query block at q_pos0 = i0 is exactly those
      // rows of the full problem, causal or not).
      std::vector<float> want;
      for (int64_t i0 : {int64_t(0), n - sub}) {
        std::vector<float> w(sub * H * hd);
        difflm::attention(q.data() + i0 * H * hd, k.data(), v.data(), w.data(), sub, n, H, H, hd,
                          i0, causal, &pool);
        want.insert(want.end(), w.begin(), w.end());
      }
      for (AttentionKernel which : kernels_for(hd)) {
        dout.poison();
        auto run = [&] {
          difflm::cuda::attention(dq.as<float>(), dk.as<float>(), dv.as<float>(), dout.as<float>(),
                                  n, n, H, H, hd, 0, causal, nullptr, which);
        };
        run();
        const auto got_all = download_vec<float>(dout, qn);
        std::vector<float> got;
        for (int64_t i0 : {int64_t(0), n - sub})
          got.insert(got.end(), got_all.begin() + i0 * H * hd,
                     got_all.begin() + (i0 + sub) * H * hd);
        validate(attn_name(s, which) + " (first and last 32 queries)", got, want, 1e-5);

        const double ms = time_ms(run, 10);
        // Useful FLOPs: QK^T and PV, 2 * 2 * hd per (query, visible key) per head.
        const double pairs = causal ? n * (n + 1) / 2.0 : double(n) * n;
        report(attn_label(which, causal), "nq=nk=" + std::to_string(n) + " H=32 hd=128", ms,
               4.0 * hd * H * pairs, 4.0 * qn * 4);
      }
    }
}

// Few query rows at LLaDA-8B's head shape, which split the keys across blocks on a GPU: a
// dual-cache step (a block of 32 against 288 positions) and a left-to-right decode step at
// position 2047. Small enough for the emulator (4 SMs: no split there; attention_shapes covers it).
GPU_CASE(attention_few_queries) {
  std::mt19937 rng(303);
  difflm::ThreadPool pool(cpu_threads());
  const int64_t H = 32, hd = 128;
  const AttnShape few[] = {{32, 288, H, H, hd, 0, false}, {1, 2048, H, H, hd, 2047, true}};
  for (const AttnShape& s : few) {
    const AttnTimes ms = check_attention(s, rng, &pool, true);
    // Every query sees every key here (the decode row sits at the last position).
    const double qn = s.nq * H * hd, kn = s.nk * H * hd;
    for (AttentionKernel which : kernels_for(hd))
      report(attn_label(which, s.causal),
             "nq=" + std::to_string(s.nq) + " nk=" + std::to_string(s.nk) + " H=32 hd=128",
             which == AttentionKernel::TensorCores ? ms.tensor_cores : ms.cuda_cores,
             4.0 * hd * H * s.nq * s.nk, 4.0 * (2 * qn + 2 * kn));
  }
}
