// GPU checks of the unmasking selection and of KNN rounding against their CPU twins
// (decode/select.h's select_commits, the backends' commit(); cpu/knn.h), then timings. Both
// outputs are integers and must match exactly:
//  - select_commit compares float64 confidences exactly as the CPU does, ties included;
//  - knn_round inputs are table rows plus noise far below the distance between rows, so the
//    float32 dot products (summed in another order on the GPU) cannot change the winner.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "backend.h"
#include "check.h"
#include "cpu/knn.h"
#include "cpu/thread_pool.h"
#include "decode/select.h"
#include "dtype.h"
#include "kernels.h"

using namespace difflm_gpu;
using difflm::DType;

namespace {

// generate_masked()'s selection: partial_sort of the eligible positions by confidence desc,
// position asc; commit the first min(k, eligible); committed lists them in that order, -1 after.
// cuda::select_commit's expected outputs from the CPU's selection: the canvas with the chosen
// tokens written, and the chosen positions by rank, -1 past them (k entries).
void select_ref(const std::vector<double>& conf, const std::vector<int32_t>& tok,
                const std::vector<uint8_t>& elig, int64_t k, std::vector<int32_t>& canvas,
                std::vector<int32_t>& committed) {
  const int64_t kk = std::max<int64_t>(k, 0);
  const auto order = difflm::select_commits(
      conf.data(), elig.data(), static_cast<int64_t>(conf.size()), difflm::CommitRule::top_k(kk));
  committed.assign(static_cast<size_t>(kk), -1);
  for (size_t j = 0; j < order.size(); ++j) {
    canvas[order[j]] = tok[order[j]];
    committed[j] = static_cast<int32_t>(order[j]);
  }
}

}  // namespace

GPU_CASE(select_commit) {
  std::mt19937 rng(201);
  for (int64_t n : {1, 37, 600, 2048}) {
    // Confidences from a few levels so that ties are common; ~60% of positions eligible.
    std::vector<double> conf(n);
    std::vector<int32_t> tok(n), canvas0(n);
    std::vector<uint8_t> elig(n);
    std::uniform_int_distribution<int> level(0, 9), tokd(0, 126463), coin(0, 9);
    for (int64_t i = 0; i < n; ++i) {
      conf[i] = level(rng) / 9.0;
      tok[i] = tokd(rng), canvas0[i] = 126336;  // the mask id
      elig[i] = coin(rng) < 6;
    }
    const int64_t n_elig = std::count(elig.begin(), elig.end(), 1);
    for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{5}, n_elig, n_elig + 3}) {
      auto want_canvas = canvas0;
      std::vector<int32_t> want_committed;
      select_ref(conf, tok, elig, k, want_canvas, want_committed);
      DeviceBuffer dconf(n * 8), dtok(n * 4), delig(n), dcanvas(n * 4), dcom((k + 1) * 4);
      dconf.upload(conf.data(), n * 8);
      dtok.upload(tok.data(), n * 4);
      delig.upload(elig.data(), n);
      dcanvas.upload(canvas0.data(), n * 4);
      // Not 0xff: that would be -1, the very value the kernel writes for unused entries.
      CK(cudaMemset(dcom.get(), 0x5a, dcom.bytes()));
      difflm::cuda::select_commit(dconf.as<double>(), dtok.as<int32_t>(), delig.as<uint8_t>(), n, k,
                                  dcanvas.as<int32_t>(), dcom.as<int32_t>(), nullptr);
      const std::string what = "select_commit n " + std::to_string(n) + " k " + std::to_string(k);
      validate_exact(what + " canvas", download_vec<int32_t>(dcanvas, n), want_canvas);
      validate_exact(what + " committed",
                     k > 0 ? download_vec<int32_t>(dcom, k) : std::vector<int32_t>{},
                     want_committed);
    }
  }
  const int64_t n = 2048;
  std::vector<double> conf(n);
  std::uniform_real_distribution<double> u01(0, 1);
  for (auto& c : conf) c = u01(rng);
  std::vector<uint8_t> elig(n, 1);
  DeviceBuffer dconf(n * 8), dtok(n * 4), delig(n), dcanvas(n * 4), dcom(n * 4);
  dconf.upload(conf.data(), n * 8);
  delig.upload(elig.data(), n);
  CK(cudaMemset(dtok.get(), 0, dtok.bytes()));
  const double ms = time_ms([&] {
    difflm::cuda::select_commit(dconf.as<double>(), dtok.as<int32_t>(), delig.as<uint8_t>(), n, 64,
                                dcanvas.as<int32_t>(), dcom.as<int32_t>(), nullptr);
  });
  report("select_commit", "n 2048 k 64", ms, 0, 13.0 * n);
}

// CudaBackend::commit against CpuBackend::commit on the same inputs, for the three rules (the
// end-to-end runs reach the threshold and factor paths too, but small models rarely commit more
// than one position a step there): the same (position, token) pairs in the same order, and the
// same canvas after. Windows start at 0 and inside the canvas; some have nothing eligible.
GPU_CASE(backend_commit_rules) {
  using difflm::CommitRule;
  std::mt19937 rng(202);
  auto cpu = difflm::make_backend("cpu", 1);
  auto gpu = difflm::make_backend("cuda", 1);
  const int32_t mask = 126336;
  const CommitRule rules[] = {CommitRule::top_k(0),
                              CommitRule::top_k(1),
                              CommitRule::top_k(5),
                              CommitRule::top_k(1000),
                              CommitRule::at_threshold(0.3),
                              CommitRule::at_threshold(0.9),
                              CommitRule::at_threshold(1.5),
                              CommitRule::by_factor(0.5),
                              CommitRule::by_factor(1.5),
                              CommitRule::by_factor(3.0),
                              CommitRule::top_k_at_threshold(0, 0.3),
                              CommitRule::top_k_at_threshold(4, 0.3),
                              CommitRule::top_k_at_threshold(4, 1.5)};
  const char* names[] = {"top-k 0",       "top-k 1",       "top-k 5",       "top-k 1000",
                         "threshold 0.3", "threshold 0.9", "threshold 1.5", "factor 0.5",
                         "factor 1.5",    "factor 3",      "top-0 at 0.3",  "top-4 at 0.3",
                         "top-4 at 1.5"};
  std::uniform_int_distribution<int> level(0, 9), tokd(0, mask - 1), pct(0, 99);
  for (int64_t rows : {1, 37, 300})
    for (int64_t row0 : {0, 5})
      for (int masked_pct : {0, 60, 100})
        for (size_t ri = 0; ri < std::size(rules); ++ri) {
          const int64_t L = row0 + rows + 3;
          std::vector<int32_t> canvas(L), tok(rows);
          std::vector<double> conf(rows);
          for (auto& c : canvas) c = pct(rng) < masked_pct ? mask : tokd(rng);
          for (int64_t i = 0; i < rows; ++i) conf[i] = level(rng) / 9.0, tok[i] = tokd(rng);
          auto run = [&](difflm::Backend& be, std::vector<int32_t>& after) {
            difflm::Buffer dcanvas(be, L * 4), dtok(be, rows * 4), dconf(be, rows * 8);
            be.to_backend(dcanvas.as(), canvas.data(), L * 4);
            be.to_backend(dtok.as(), tok.data(), rows * 4);
            be.to_backend(dconf.as(), conf.data(), rows * 8);
            std::vector<std::pair<int32_t, int32_t>> committed;
            be.commit(dtok.as<int32_t>(), dconf.as<double>(), dcanvas.as<int32_t>(), row0, rows,
                      mask, rules[ri], &committed);
            after.resize(L);
            be.to_host(after.data(), dcanvas.as(), L * 4);
            return committed;
          };
          std::vector<int32_t> want_canvas, got_canvas;
          const auto want = run(*cpu, want_canvas);
          const auto got = run(*gpu, got_canvas);
          const std::string what = "backend commit " + std::string(names[ri]) + " rows " +
                                   std::to_string(rows) + " row0 " + std::to_string(row0) +
                                   " masked " + std::to_string(masked_pct) + "%";
          std::vector<int32_t> want_flat, got_flat;
          for (const auto& [p, t] : want) want_flat.push_back(p), want_flat.push_back(t);
          for (const auto& [p, t] : got) got_flat.push_back(p), got_flat.push_back(t);
          validate_exact(what + " committed", got_flat, want_flat);
          validate_exact(what + " canvas", got_canvas, want_canvas);
        }
}

GPU_CASE(knn_round) {
  std::mt19937 rng(202);
  difflm::ThreadPool pool(8);  // the float32 CPU reference of the GENIE-sized case is ~0.5 GFMA
  struct S {
    int64_t rows, dim, vocab;
  };
  // Awkward sizes: one row, a single table row, dims below and above the 16-wide k tile, row
  // and vocab counts off the 64-wide tiles, and a GENIE-sized table.
  for (S s : {S{1, 3, 1}, S{7, 16, 821}, S{69, 17, 1000}, S{130, 128, 30522}})
    for (DType dt : {DType::F32, DType::BF16, DType::F16})
      for (bool cosine : {false, true}) {
        const auto src = random_floats(s.vocab * s.dim, rng);
        std::vector<float> f32 = src;  // the table's values after rounding to dt
        std::vector<uint16_t> bits(dt == DType::F32 ? 0 : src.size());
        for (size_t i = 0; i < bits.size(); ++i) {
          bits[i] = dt == DType::BF16 ? difflm::f32_to_bf16(src[i]) : difflm::f32_to_f16(src[i]);
          f32[i] = dt == DType::BF16 ? difflm::bf16_to_f32(bits[i]) : difflm::f16_to_f32(bits[i]);
        }
        const void* table = dt == DType::F32 ? static_cast<const void*>(f32.data())
                                             : static_cast<const void*>(bits.data());
        const size_t tbytes = src.size() * difflm::dtype_size(dt);
        std::vector<float> norms(s.vocab);
        difflm::knn_norms(table, dt, s.vocab, s.dim, cosine, norms.data());
        std::vector<float> x(s.rows * s.dim);
        const auto noise = random_floats(x.size(), rng, 1e-3f);
        std::uniform_int_distribution<int64_t> pick(0, s.vocab - 1);
        for (int64_t r = 0; r < s.rows; ++r) {
          const int64_t v = pick(rng);
          for (int64_t d = 0; d < s.dim; ++d)
            x[r * s.dim + d] = f32[v * s.dim + d] + noise[r * s.dim + d];
        }
        std::vector<int32_t> want(s.rows);
        difflm::knn_round(x.data(), s.rows, s.dim, table, dt, s.vocab, norms.data(), cosine,
                          want.data(), &pool);
        DeviceBuffer dx(x.size() * 4), dE(tbytes), dn(s.vocab * 4), dout(s.rows * 4);
        dx.upload(x.data(), x.size() * 4);
        dE.upload(table, tbytes);
        dn.upload(norms.data(), s.vocab * 4);
        dout.poison();
        difflm::cuda::knn_round(dx.as<float>(), s.rows, s.dim, dE.get(), dt, s.vocab,
                                dn.as<float>(), cosine, dout.as<int32_t>(), nullptr);
        validate_exact("knn_round " + std::to_string(s.rows) + "x" + std::to_string(s.dim) + " V " +
                           std::to_string(s.vocab) + " " + difflm::dtype_name(dt) +
                           (cosine ? " cosine" : " l2"),
                       download_vec<int32_t>(dout, s.rows), want);
      }
  // Equal table rows: the lower index must win on the GPU too, whichever block finishes first.
  {
    const int64_t dim = 8, vocab = 300;
    std::vector<float> e = random_floats(vocab * dim, rng);
    std::copy(e.begin() + 250 * dim, e.begin() + 251 * dim,
              e.begin() + 7 * dim);  // row 7 = row 250
    std::vector<float> norms(vocab);
    difflm::knn_norms(e.data(), DType::F32, vocab, dim, false, norms.data());
    DeviceBuffer dx(dim * 4), dE(e.size() * 4), dn(vocab * 4), dout(4);
    dx.upload(e.data() + 250 * dim, dim * 4);
    dE.upload(e.data(), e.size() * 4);
    dn.upload(norms.data(), vocab * 4);
    dout.poison();
    difflm::cuda::knn_round(dx.as<float>(), 1, dim, dE.get(), DType::F32, vocab, dn.as<float>(),
                            false, dout.as<int32_t>(), nullptr);
    validate_exact("knn_round tie -> lowest index", download_vec<int32_t>(dout, 1), {7});
  }
  // GENIE-sized rounding: 4096 vectors of 128 against a 30522-row bf16 table.
  const int64_t rows = 4096, dim = 128, vocab = 30522;
  DeviceBuffer dx(rows * dim * 4), dE(vocab * dim * 2), dn(vocab * 4), dout(rows * 4);
  const auto xs = random_floats(rows * dim, rng);
  dx.upload(xs.data(), xs.size() * 4);
  CK(cudaMemset(dE.get(), 0x3c, dE.bytes()));
  CK(cudaMemset(dn.get(), 0, dn.bytes()));
  const double ms = time_ms([&] {
    difflm::cuda::knn_round(dx.as<float>(), rows, dim, dE.get(), DType::BF16, vocab, dn.as<float>(),
                            false, dout.as<int32_t>(), nullptr);
  });
  report("knn_round bf16 l2", "4096x128 V 30522", ms, 2.0 * rows * vocab * dim,
         4.0 * rows * dim + 2.0 * vocab * dim);
}
