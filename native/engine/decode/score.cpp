#include "score.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "../errors.h"
#include "../rng.h"

namespace difflm {

namespace {

// -log softmax(row)[target] in float64.
double token_nll(const float* row, int64_t vocab, int32_t target) {
  float mx = row[0];
  for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
  return std::log(sum) - (static_cast<double>(row[target]) - mx);
}

CheckCancel checker(const CancelFn& cancelled) {
  return [&cancelled] {
    if (cancelled && cancelled())
      throw EngineError(ErrorCode::Aborted, "aborted: scoring was cancelled");
  };
}

ScoreResult score_causal(const LladaModel& model, Backend& be, const ScoreRequest& req,
                         const CancelFn& cancelled) {
  const int64_t n = static_cast<int64_t>(req.ids.size()), V = model.spec().vocab;
  const int64_t rows = n - req.first;  // logits of positions first-1 .. n-2 predict first .. n-1
  Buffer logits(be, static_cast<size_t>(rows * V) * sizeof(float));
  model.forward(req.ids.data(), 1, n, req.first - 1, n - 1, logits.as(), checker(cancelled));
  std::vector<float> host(static_cast<size_t>(rows * V));
  be.to_host(host.data(), logits.as(), host.size() * sizeof(float));
  ScoreResult r;
  for (int64_t i = 0; i < rows; ++i) r.nll += token_nll(&host[i * V], V, req.ids[req.first + i]);
  r.tokens = rows;
  return r;
}

ScoreResult score_masked(const LladaModel& model, Backend& be, const ScoreRequest& req,
                         const CancelFn& cancelled) {
  const int64_t n = static_cast<int64_t>(req.ids.size()), V = model.spec().vocab;
  const int64_t T = n - req.first;  // targets
  const int64_t b = std::min(req.batch, req.samples);
  const CheckCancel check = checker(cancelled);
  Buffer logits(be, static_cast<size_t>(b * T * V) * sizeof(float));
  std::vector<float> host(static_cast<size_t>(b * T * V));
  std::vector<int32_t> ids(static_cast<size_t>(b * n));
  std::vector<int64_t> order(static_cast<size_t>(T));
  double total = 0;
  int64_t done = 0;
  for (int64_t chunk = 0; done < req.samples; ++chunk) {
    check();
    const int64_t rows = std::min(b, req.samples - done);
    // Stratified mask counts (LLaDA): k ~ U{1..T}, then rows evenly spaced counts from k,
    // wrapped into [1, T].
    const int64_t k = 1 + static_cast<int64_t>(uniform01(req.seed, RngStream::Remask,
                                                         static_cast<uint64_t>(chunk), 0, 0) *
                                               static_cast<double>(T));
    std::vector<int64_t> masked(static_cast<size_t>(rows));
    for (int64_t j = 0; j < rows; ++j) {
      const double x = static_cast<double>(k) + static_cast<double>(j) * T / rows;
      masked[j] = (static_cast<int64_t>(std::llround(x)) - 1) % T + 1;
      // A random subset of that size: sort target positions by a per-position random key.
      std::iota(order.begin(), order.end(), 0);
      std::vector<double> key(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t)
        key[t] = uniform01(req.seed, RngStream::Gumbel, static_cast<uint64_t>(chunk),
                           static_cast<uint64_t>(j), static_cast<uint64_t>(t));
      std::sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return key[a] < key[c]; });
      std::copy(req.ids.begin(), req.ids.end(), ids.begin() + j * n);
      for (int64_t m = 0; m < masked[j]; ++m) ids[j * n + req.first + order[m]] = req.mask_id;
    }
    // The logits of positions [first, n); with shifted logits (Dream), the outputs one before.
    const int64_t shift = model.spec().shift_logits ? 1 : 0;
    model.forward(ids.data(), rows, n, req.first - shift, n - shift, logits.as(), check);
    be.to_host(host.data(), logits.as(), static_cast<size_t>(rows * T * V) * sizeof(float));
    for (int64_t j = 0; j < rows; ++j) {
      double ce = 0;
      for (int64_t t = 0; t < T; ++t)
        if (ids[j * n + req.first + t] == req.mask_id)
          ce += token_nll(&host[(j * T + t) * V], V, req.ids[req.first + t]);
      total += ce / (static_cast<double>(masked[j]) / T);
    }
    done += rows;
  }
  ScoreResult r;
  r.nll = total / static_cast<double>(req.samples);
  r.tokens = T;
  return r;
}

}  // namespace

void ScoreRequest::validate(const LladaSpec& spec) const {
  auto bad = [](const std::string& what) { throw EngineError(ErrorCode::InvalidArgument, what); };
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n > spec.max_seq_len)
    bad("the text has " + std::to_string(n) + " tokens, more than the model's context (" +
        std::to_string(spec.max_seq_len) + ")");
  if (first < 1 || first >= n) bad("nothing to score: the text needs at least 2 tokens");
  if (!spec.causal) {
    if (samples <= 0) bad("samples must be a positive integer");
    if (batch <= 0) bad("batch must be a positive integer");
    if (mask_id < 0 || mask_id >= spec.vocab) bad("the model has no mask token");
  }
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= spec.vocab)
      bad("token " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
          " is outside the vocabulary (" + std::to_string(spec.vocab) + " rows)");
}

ScoreResult score(const LladaModel& model, Backend& be, const ScoreRequest& req,
                  const CancelFn& cancelled) {
  const auto t0 = std::chrono::steady_clock::now();
  req.validate(model.spec());
  ScoreResult r = model.spec().causal ? score_causal(model, be, req, cancelled)
                                      : score_masked(model, be, req, cancelled);
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace difflm
