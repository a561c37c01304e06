#include "masked.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <new>

#include "../errors.h"
#include "../rng.h"
#include "confidence.h"
#include "rng_lanes.h"
#include "schedule.h"

namespace difflm {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kInf = std::numeric_limits<double>::infinity();

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

[[noreturn]] void bad_option(const std::string& what) {
  throw EngineError(ErrorCode::InvalidArgument, what);
}

void throw_if_cancelled(const CancelFn& cancelled) {
  if (cancelled && cancelled())
    throw EngineError(ErrorCode::Aborted, "aborted: generation was cancelled");
}

}  // namespace

void MaskedRequest::validate(const LladaSpec& spec) const {
  if (spec.causal)
    bad_option(
        "masked diffusion needs a bidirectional model; this one is causal (use "
        "left-to-right decoding)");
  if (gen_length <= 0) bad_option("genLength must be a positive integer");
  if (block_length <= 0) bad_option("blockLength must be a positive integer");
  if (gen_length % block_length != 0)
    bad_option("genLength (" + std::to_string(gen_length) + ") must be divisible by blockLength (" +
               std::to_string(block_length) + ")");
  const int64_t blocks = gen_length / block_length;
  if (parallel == Parallel::Off && (steps <= 0 || steps % blocks != 0))
    bad_option("steps (" + std::to_string(steps) +
               ") must be a positive multiple of the number of blocks (" + std::to_string(blocks) +
               ")");
  const int64_t len = static_cast<int64_t>(prompt.size()) + gen_length;
  if (len > spec.max_seq_len)
    bad_option("prompt (" + std::to_string(prompt.size()) + " tokens) + genLength (" +
               std::to_string(gen_length) + ") exceeds max_sequence_length (" +
               std::to_string(spec.max_seq_len) + ")");
  if (!std::isfinite(temperature) || temperature < 0)
    bad_option("temperature must be a finite number >= 0");
  if (!std::isfinite(cfg_scale) || cfg_scale < 0)
    bad_option("cfgScale must be a finite number >= 0");
  if (parallel == Parallel::Threshold && !(threshold >= 0 && threshold <= 1))
    bad_option("parallel.threshold must be a number from 0 to 1");
  if (parallel == Parallel::Factor && !(std::isfinite(factor) && factor > 0))
    bad_option("parallel.factor must be a finite number > 0");
  if (cache != CacheMode::None && cfg_scale > 0)
    bad_option(
        "cfgScale > 0 is not implemented with a KV cache (cache: 'prefix' or 'dual'); use "
        "cache: 'none'");
  if (sampler == Sampler::Dream) {
    if (block_length != gen_length && cache == CacheMode::None)
      bad_option(
          "Dream's sampler has blocks (blockLength) only with a KV cache (cache: 'prefix' or "
          "'dual', Fast-dLLM's block decoding)");
    if (cfg_scale > 0 || remasking != Remasking::LowConfidence || logits_eos_inf ||
        confidence_eos_eot_inf || parallel != Parallel::Off)
      bad_option(
          "cfgScale, remasking, logitsEosInf, confidenceEosEotInf and parallel are LLaDA's "
          "options; Dream's sampler does not take them");
    if (!(eps > 0 && eps < 1)) bad_option("eps must be a number in (0, 1)");
    if (!(std::isfinite(alg_temp) && alg_temp >= 0))
      bad_option("algTemp must be a finite number >= 0");
    if (filter.top_k < 0) bad_option("topK must be an integer >= 0");
    if (!(filter.top_p > 0 && filter.top_p <= 1)) bad_option("topP must be a number in (0, 1]");
    if (static_cast<int>(alg) < 0 || static_cast<int>(alg) > 4) bad_option("unknown alg");
    if (alg == DreamAlg::ConfidenceThreshold && !(threshold >= 0 && threshold <= 1))
      bad_option("threshold must be a number from 0 to 1");
  } else if (filter.active(spec.vocab)) {
    bad_option("topK and topP are implemented for Dream's sampler only");
  }
  auto check_id = [&](int64_t id, const char* name, bool optional) {
    if ((optional && id == -1)) return;
    if (id < 0 || id >= spec.vocab)
      bad_option(std::string(name) + " " + std::to_string(id) + " is outside the vocabulary (" +
                 std::to_string(spec.vocab) + " rows)");
  };
  check_id(mask_id, "maskTokenId", false);
  check_id(eos_id, "eosTokenId", true);
  check_id(eot_id, "eotTokenId", true);
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= spec.vocab)
      bad_option("prompt token " + std::to_string(prompt[i]) + " at index " + std::to_string(i) +
                 " is outside the vocabulary (" + std::to_string(spec.vocab) + " rows)");
}

CommitRule MaskedRequest::rule(int64_t k) const {
  if (sampler == Sampler::Dream && alg == DreamAlg::ConfidenceThreshold)
    return CommitRule::top_k_at_threshold(k, threshold);
  switch (parallel) {
    case Parallel::Threshold: return CommitRule::at_threshold(threshold);
    case Parallel::Factor: return CommitRule::by_factor(factor);
    case Parallel::Off: break;
  }
  return CommitRule::top_k(k);
}

std::string bad_logit_message(int64_t pos, int64_t token, float value) {
  const char* what = std::isnan(value) ? "NaN" : value > 0 ? "+inf" : "a non-finite value";
  return "logits at canvas position " + std::to_string(pos) + " contain " + what + " (token " +
         std::to_string(token) + "); the weights may be corrupt";
}

void throw_if_bad_logits(const float* logits, int64_t vocab, int64_t pos) {
  constexpr float kInfF = std::numeric_limits<float>::infinity();
  for (int64_t v = 0; v < vocab; ++v)
    if (std::isnan(logits[v]) || logits[v] == kInfF)
      throw EngineError(ErrorCode::Internal, bad_logit_message(pos, v, logits[v]));
}

Candidate sample_candidate(float* logits, int64_t vocab, const MaskedRequest& req, int64_t step,
                           int64_t pos) {
  if (req.sampler == Sampler::Dream) return dream_sample_row(logits, vocab, req, step, pos);
  Candidate c = sample_row(logits, vocab, req, step, pos);
  if (req.remasking == Remasking::Random)
    c.confidence = uniform01(req.seed, RngStream::Remask, static_cast<uint64_t>(step),
                             static_cast<uint64_t>(pos), 0);
  return c;
}

Candidate sample_row(float* logits, int64_t vocab, const MaskedRequest& req, int64_t step,
                     int64_t pos) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  throw_if_bad_logits(logits, vocab, pos);
  if (req.logits_eos_inf && req.eos_id >= 0) logits[req.eos_id] = neg_inf;

  // Candidate x0: argmax of the logits, or of exp(l) / E^T with E ~ Exp(1) drawn in float64
  // (LLaDA's add_gumbel_noise), i.e. argmax of l - T * log(E).
  int32_t x0 = 0;
  if (req.temperature == 0) {
    for (int64_t v = 1; v < vocab; ++v)
      if (logits[v] > logits[x0]) x0 = static_cast<int32_t>(v);
  } else {
    double best = kNegInf;
    // Tokens that cannot reach the best score so far, whatever their noise, are skipped without
    // drawing it, and those whose draw bounds their noise below what they need skip its
    // logarithms (exact: rng.h's bounds hold for every draw, and rounding is monotone; no
    // skipping for T < 1e-300).
    const bool prune = req.temperature >= 1e-300;
    const double reach = prune ? kGumbelNoiseMax * req.temperature : kInf;
    const auto hopeless = [&](int64_t v) {
      return logits[v] == neg_inf || logits[v] + reach < best;
    };
    // Draws come kRngLanes at a time (rng_lanes.h; the same values) for a run of that many
    // tokens where at least two may need one; run `batched` holds lanes[], -1 for none.
    double lanes[kRngLanes];
    int64_t batched = -1, looked = -1;
    for (int64_t v = 0; v < vocab; ++v) {
      if (hopeless(v)) continue;
      const int64_t run = v - v % kRngLanes;
      if (run != looked && run + kRngLanes <= vocab) {
        looked = run;
        int live = 0;
        for (int64_t w = v; w < run + kRngLanes; ++w) live += !hopeless(w);
        if (live >= 4) {
          uniform01_lanes(req.seed, RngStream::Gumbel, static_cast<uint64_t>(step),
                          static_cast<uint64_t>(pos), static_cast<uint64_t>(run), lanes);
          batched = run;
        }
      }
      const double u = run == batched
                           ? lanes[v - run]
                           : uniform01(req.seed, RngStream::Gumbel, static_cast<uint64_t>(step),
                                       static_cast<uint64_t>(pos), static_cast<uint64_t>(v));
      if (prune && logits[v] + req.temperature * gumbel_noise_bound(u) < best) continue;
      const double score = logits[v] - req.temperature * std::log(-std::log(u));
      if (score > best) {
        best = score;
        x0 = static_cast<int32_t>(v);
      }
    }
  }

  // confidenceEosEotInf, as LLaDA's code does it after x0 is drawn: the EOT logit is set to
  // -inf, and at temperature 0 (where its noisy logits alias the logits) the EOS logit too; so
  // those tokens get confidence 0 and leave the softmax denominator.
  if (req.confidence_eos_eot_inf) {
    if (req.eot_id >= 0) logits[req.eot_id] = neg_inf;
    if (req.temperature == 0 && req.eos_id >= 0) logits[req.eos_id] = neg_inf;
  }
  if (req.remasking != Remasking::LowConfidence) return {x0, 0.0};
  // Softmax probability of x0 over the unscaled logits (decode/confidence.h).
  return {x0, softmax_confidence(logits, vocab, x0)};
}

MaskedResult generate_masked(const LladaModel& model, Backend& be, const MaskedRequest& req,
                             const std::function<void(const StepEvent&)>& on_step,
                             const CancelFn& cancelled) {
  const auto t_start = std::chrono::steady_clock::now();
  const LladaSpec& spec = model.spec();
  req.validate(spec);
  const int64_t P = static_cast<int64_t>(req.prompt.size());
  const int64_t L = P + req.gen_length, V = spec.vocab;
  const int32_t M = req.mask_id;
  const bool cfg = req.cfg_scale > 0;
  const int64_t batch = cfg ? 2 : 1;

  // The host mirror of the canvas (for the schedule and the result); the backend holds the
  // canvas the model reads, updated in place by the commits. With CFG the backend canvas has a
  // second row, the unconditional one: the prompt (LLaDA: canvas != mask at the start) masked.
  MaskedResult res;
  res.canvas.assign(static_cast<size_t>(L), M);
  std::copy(req.prompt.begin(), req.prompt.end(), res.canvas.begin());
  std::vector<int32_t>& x = res.canvas;
  std::vector<int32_t> rows_init(x);
  if (cfg) {
    rows_init.insert(rows_init.end(), x.begin(), x.end());
    for (int64_t i = 0; i < P; ++i)
      if (x[i] != M) rows_init[L + i] = M;
  }
  const size_t f = sizeof(float);
  Buffer canvas(be, rows_init.size() * sizeof(int32_t));
  be.to_backend(canvas.as(), rows_init.data(), rows_init.size() * sizeof(int32_t));
  int32_t* const canvas0 = canvas.as<int32_t>();
  // Logits, candidates: sized for the largest window (the whole canvas), allocated once.
  Buffer logits(be, static_cast<size_t>(batch * L * V) * f);
  Buffer tokens(be, static_cast<size_t>(L) * sizeof(int32_t));
  Buffer confidence(be, static_cast<size_t>(L) * sizeof(double));

  const int64_t blocks = req.gen_length / req.block_length;
  const bool fixed = req.parallel == Parallel::Off;
  const bool dream = req.sampler == Sampler::Dream;
  const int64_t steps_per_block = fixed ? req.steps / blocks : 0;
  // Dream with a KV cache is Fast-dLLM's generation_utils_block.py (masked.h: Sampler);
  // without one, Dream's own _sample over a single block (DreamBudget).
  const bool dream_blocks = dream && req.cache != CacheMode::None;
  std::unique_ptr<DreamBudget> budget;
  if (dream && !dream_blocks)
    budget = std::make_unique<DreamBudget>(req, std::count(x.begin(), x.end(), M));
  // Its cached steps score positions by entropy whatever `alg` says (confidence_threshold aside),
  // as the reference does.
  MaskedRequest block_req;
  if (dream_blocks && req.alg != DreamAlg::ConfidenceThreshold) {
    block_req = req;
    block_req.alg = DreamAlg::Entropy;
  }
  const MaskedRequest& sreq = block_req.sampler == Sampler::Dream ? block_req : req;
  const CheckCancel check_cancel = [&cancelled] { throw_if_cancelled(cancelled); };
  KvCache cache;
  if (req.cache != CacheMode::None) cache = model.make_cache(L);
  int64_t global_step = 0;

  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t block_start = P + b * req.block_length;
    const int64_t block_end = block_start + req.block_length;
    auto block_masks = [&] {
      return std::count(x.begin() + block_start, x.begin() + block_end, M);
    };
    std::vector<int64_t> k;
    if (fixed && !dream) k = num_transfer_tokens(block_masks(), steps_per_block);
    bool refill = true;  // the block's first forward runs the whole canvas and fills the cache
    const auto more = [&](int64_t t) {
      if (dream_blocks)  // a step per timestep after the first, or until no mask is left
        return block_masks() > 0 &&
               (req.alg == DreamAlg::ConfidenceThreshold || t < steps_per_block);
      if (!fixed) return block_masks() > 0;
      return t < (dream ? budget->steps() : steps_per_block);
    };
    for (int64_t t = 0; more(t); ++t, ++global_step) {
      throw_if_cancelled(cancelled);
      StepEvent ev;
      ev.step = global_step;
      ev.block = b;
      // Rows that can be committed: masked and before the end of this block (later blocks are
      // ineligible; cached steps, as Fast-dLLM's, look inside the block only). Logits are
      // needed for those rows only.
      // Dream's blocks: the first forward commits the block's first position, whatever its
      // confidence; the cached steps look at the block only (not at masks in the prompt).
      int64_t r0 = (req.cache != CacheMode::None && !refill) || dream_blocks ? block_start : 0;
      const int64_t r1 = dream_blocks && refill ? block_start + 1 : block_end;
      while (r0 < r1 && x[r0] != M) ++r0;
      // Blocks lie past the prompt, and a block's start is a mask until its first forward commits
      // it; were it not, that forward would never run and the threshold rule would loop forever.
      if (dream_blocks && refill && r0 == r1)
        throw EngineError(ErrorCode::Internal,
                          "Dream block " + std::to_string(b) + " starts at a committed position");
      // Positions this step may commit (fixed schedules; parallel rules decide for themselves).
      int64_t k_t = 0;
      if (dream_blocks)
        k_t = refill ? 1
              : req.alg == DreamAlg::ConfidenceThreshold
                  ? block_masks()
                  : dream_transfer_count(block_masks(), t, steps_per_block,
                                         static_cast<float>(req.eps));
      else if (dream)
        k_t = budget->at(t, x);
      else if (fixed)
        k_t = k[t];
      if ((!fixed || k_t > 0) && r0 < r1) {
        const int64_t rows = r1 - r0;
        auto t0 = std::chrono::steady_clock::now();
        if (req.cache == CacheMode::None) {
          model.forward_resident(canvas0, batch, L, r0, r1, logits.as(), check_cancel);
          if (cfg)  // logits = u + (cfg + 1) * (c - u)
            be.cfg_mix(logits.as(), logits.as() + rows * V, rows * V,
                       static_cast<float>(req.cfg_scale + 1.0));
        } else if (refill) {
          model.forward_window(canvas0, 0, L, L, cache, r0, r1, logits.as(), check_cancel);
          refill = false;
        } else {
          const int64_t w1 = req.cache == CacheMode::Prefix ? L : block_end;
          model.forward_window(canvas0 + block_start, block_start, w1, L, cache, r0, r1,
                               logits.as(), check_cancel);
        }
        ++res.forwards;
        res.forward_ms += ms_since(t0);
        t0 = std::chrono::steady_clock::now();
        be.sample_candidates(logits.as(), rows, V, r0, canvas0, sreq, global_step,
                             tokens.as<int32_t>(), confidence.as<double>());
        be.commit(tokens.as<int32_t>(), confidence.as<double>(), canvas0, r0, rows, M,
                  req.rule(k_t), &ev.committed);
        for (const auto& [pos, tok] : ev.committed) x[pos] = tok;
        if (budget) budget->after(t, k_t, static_cast<int64_t>(ev.committed.size()));
        // A parallel rule commits at least one masked position of the block each step; with
        // none, this step would repeat forever (the host's canvas and the backend's disagree).
        if (!fixed && ev.committed.empty())
          throw EngineError(ErrorCode::Internal, "parallel decoding committed nothing at step " +
                                                     std::to_string(global_step) +
                                                     " with masks left in block " +
                                                     std::to_string(b));
        // The unconditional row gets the same commits (committed positions were masks, so never
        // prompt_index positions): one copy of the window past the prompt, and single writes
        // for the rare commits inside the prompt (a prompt that contains masks).
        if (cfg && !ev.committed.empty()) {
          const int64_t from = std::max(r0, P);
          if (from < block_end)
            be.copy(canvas0 + L + from, canvas0 + from,
                    static_cast<size_t>(block_end - from) * sizeof(int32_t));
          for (const auto& [pos, tok] : ev.committed)
            if (pos < P) be.to_backend(canvas0 + L + pos, &tok, sizeof(int32_t));
        }
        res.sample_ms += ms_since(t0);
      }
      if (on_step) on_step(ev);
    }
  }
  res.steps = global_step;
  res.total_ms = ms_since(t_start);
  return res;
}

}  // namespace difflm
