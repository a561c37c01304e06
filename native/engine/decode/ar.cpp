#include "ar.h"

#include <chrono>
#include <cmath>

#include "../errors.h"

namespace difflm {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void ArRequest::validate(const LladaSpec& spec) const {
  auto bad = [](const std::string& what) { throw EngineError(ErrorCode::InvalidArgument, what); };
  if (!spec.causal) bad("left-to-right decoding needs a causal model");
  if (prompt.empty()) bad("the prompt must hold at least one token");
  if (max_new_tokens <= 0) bad("genLength must be a positive integer");
  const int64_t len = static_cast<int64_t>(prompt.size()) + max_new_tokens;
  if (len > spec.max_seq_len)
    bad("prompt (" + std::to_string(prompt.size()) + " tokens) + genLength (" +
        std::to_string(max_new_tokens) + ") exceeds max_position_embeddings (" +
        std::to_string(spec.max_seq_len) + ")");
  if (!std::isfinite(temperature) || temperature < 0)
    bad("temperature must be a finite number >= 0");
  if (filter.top_k < 0) bad("topK must be >= 0");
  if (!(filter.top_p > 0 && filter.top_p <= 1)) bad("topP must be in (0, 1]");
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= spec.vocab)
      bad("prompt token " + std::to_string(prompt[i]) + " at index " + std::to_string(i) +
          " is outside the vocabulary (" + std::to_string(spec.vocab) + " rows)");
}

MaskedResult generate_ar(const LladaModel& model, Backend& be, const ArRequest& req,
                         const std::function<void(const StepEvent&)>& on_step,
                         const CancelFn& cancelled) {
  const auto t_start = std::chrono::steady_clock::now();
  const LladaSpec& spec = model.spec();
  req.validate(spec);
  const int64_t V = spec.vocab;
  const CheckCancel check_cancel = [&cancelled] {
    if (cancelled && cancelled())
      throw EngineError(ErrorCode::Aborted, "aborted: generation was cancelled");
  };
  MaskedResult res;
  std::vector<int32_t>& tokens = res.canvas;
  tokens = req.prompt;
  KvCache cache = model.make_cache(static_cast<int64_t>(req.prompt.size()) + req.max_new_tokens);
  Buffer logits(be, static_cast<size_t>(V) * sizeof(float));
  // The draw: sample_row's Gumbel-max (argmax at temperature 0) over the filtered row.
  MaskedRequest draw;
  draw.temperature = req.temperature;
  draw.seed = req.seed;
  draw.remasking = Remasking::Random;  // no confidence needed
  for (int64_t step = 0; step < req.max_new_tokens; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    if (step == 0) {  // prefill: the whole prompt in one forward
      model.forward_cached(req.prompt.data(), static_cast<int64_t>(req.prompt.size()), cache,
                           logits.as(), check_cancel);
    } else {
      const int32_t last = tokens.back();
      model.forward_cached(&last, 1, cache, logits.as(), check_cancel);
    }
    res.forward_ms += ms_since(t0);  // on a GPU: the launches; the wait falls in sample_ms
    t0 = std::chrono::steady_clock::now();
    const int64_t pos = static_cast<int64_t>(tokens.size());
    // The draw runs where the logits are; only the token comes back.
    const int32_t token = be.sample_next(logits.as<float>(), V, draw, req.filter, step, pos);
    res.sample_ms += ms_since(t0);
    tokens.push_back(token);
    ++res.steps;
    ++res.forwards;
    StepEvent ev;
    ev.step = step;
    ev.block = 0;
    ev.committed.emplace_back(static_cast<int32_t>(pos), token);
    if (on_step) on_step(ev);
    if (req.stop_at_eos && req.eos_id >= 0 && token == req.eos_id) break;
    check_cancel();
  }
  res.total_ms = ms_since(t_start);
  return res;
}

}  // namespace difflm
