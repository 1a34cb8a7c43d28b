#include "model/speculative.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "core/error.h"

namespace moeflow {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void add_to(PassCounters& total, const PassCounters& part) {
  total.passes += part.passes;
  total.rows += part.rows;
  total.seconds += part.seconds;
  total.expert_bytes += part.expert_bytes;
  total.weight_bytes += part.weight_bytes;
}

ControllerOptions with_draft_context(ControllerOptions control, int64_t draft_context) {
  control.draft_context = draft_context;
  return control;
}

}  // namespace

SpeculativeDecoder::SpeculativeDecoder(ForwardBackend& engine, const SpeculativeOptions& opts)
    : engine_(engine),
      opts_(opts),
      controller_(with_draft_context(opts.control, opts.draft_context)) {
  validate(opts.draft, engine.config());
  if (opts.control.gamma_max > kMaxDraftPositions)
    throw Error("speculation: γ at most " + std::to_string(kMaxDraftPositions) + ", got " +
                std::to_string(opts.control.gamma_max));
  if (!opts.acceptance) throw Error("speculation: no acceptance test");
  if (opts.draft_context < 0)
    throw Error("speculation: draft_context must be >= 0, got " +
                std::to_string(opts.draft_context));
}

void SpeculativeDecoder::add(uint64_t seq_id, std::vector<int32_t> prompt,
                             const SamplingParams& sampling, std::vector<int64_t> stop_tokens) {
  const std::string what = "speculative decoding: sequence " + std::to_string(seq_id);
  if (seq_id & kDraftBit) throw Error(what + ": ids with the top bit set are the drafter's");
  if (prompt.empty()) throw Error(what + ": empty prompt");
  if (sequences_.count(seq_id)) throw Error(what + " was already added");
  if (engine_.sequence_length(seq_id) >= static_cast<int64_t>(prompt.size()))
    throw Error(what + " already has " + std::to_string(engine_.sequence_length(seq_id)) +
                " cached tokens, at most " + std::to_string(prompt.size() - 1) + " may be");
  if (engine_.sequence_length(draft_id(seq_id)) != 0)
    throw Error(what + ": the drafter's cache is not empty");
  Sequence s{std::move(prompt),
             Sampler(sampling),
             std::mt19937_64(sampling.seed),
             sampling.temperature == 0.0f,
             std::move(stop_tokens),
             0,
             {},
             {},
             0};
  sequences_.emplace(seq_id, std::move(s));
}

void SpeculativeDecoder::finish(uint64_t seq_id) {
  sequences_.erase(seq_id);
  engine_.release(seq_id);
  engine_.release(draft_id(seq_id));
}

void SpeculativeDecoder::forget(uint64_t seq_id) {
  sequences_.erase(seq_id);
  engine_.release(draft_id(seq_id));
}

void SpeculativeDecoder::append_decoded(uint64_t seq_id, const std::vector<int32_t>& tokens) {
  Sequence& s = sequence(seq_id);
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
}

SpeculativeDecoder::Sequence& SpeculativeDecoder::sequence(uint64_t seq_id) {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end())
    throw Error("speculative decoding: sequence " + std::to_string(seq_id) + " was never added");
  return it->second;
}

std::vector<float> SpeculativeDecoder::timed_forward(const std::vector<SequenceTokens>& batch,
                                                     bool all_positions, const ExpertBudget& budget,
                                                     PassCounters& counters) {
  StepStats step;
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> logits = engine_.forward(batch, all_positions, &step, budget);
  counters.seconds += seconds_since(start);
  counters.passes += 1;
  counters.rows += step.rows;
  counters.expert_bytes += step.expert_bytes;
  counters.weight_bytes += step.weight_bytes;
  return logits;
}

int32_t SpeculativeDecoder::pick(Sequence& s, const float* logits, std::vector<float>* dist) {
  const int64_t V = engine_.config().vocab_size;
  if (s.greedy) return argmax(logits, V);
  std::vector<float> probs = s.sampler.distribution(logits, V);
  const int32_t t = draw(probs.data(), V, uniform01(s.rng));
  if (dist) *dist = std::move(probs);
  return t;
}

void SpeculativeDecoder::emit(Sequence& s, std::vector<int32_t>& out) {
  for (size_t i = 0; i < out.size(); ++i) {
    if (std::find(s.stop_tokens.begin(), s.stop_tokens.end(), out[i]) != s.stop_tokens.end()) {
      out.resize(i + 1);
      break;
    }
  }
  s.tokens.insert(s.tokens.end(), out.begin(), out.end());
  stats_.emitted += static_cast<int64_t>(out.size());
}

// A new sequence's prompt, or tokens decoded plainly while speculation was off, are not yet in
// one cache or the other: prefill them outside the timed draft and verify passes, so that the
// controller's costs stay those of steady decoding. The full cache takes every token but the
// last; the drafter's (when the sequence drafts this round) every token but the last two, which
// the first draft pass feeds. A drafter further behind than draft_context tokens is rebuilt from
// only the last draft_context of them: on an MoE a prefill touches nearly every expert, so a
// full catch-up after a long stretch of plain decoding would cost more than speculation can win
// back. Its positions then start at 0; rotary attention depends only on relative positions, so
// this is exactly the drafter over a truncated context (the verifier is unaffected).
PassCounters SpeculativeDecoder::catch_up(const std::vector<SpeculativeRequest>& requests) {
  std::vector<SequenceTokens> full, draft;
  for (const SpeculativeRequest& r : requests) {
    Sequence& s = sequence(r.seq_id);
    const int64_t m = static_cast<int64_t>(s.tokens.size()) - 1;
    const int64_t f = engine_.sequence_length(r.seq_id);
    if (f < m) full.push_back({r.seq_id, {s.tokens.begin() + f, s.tokens.begin() + m}});
    if (s.gamma == 0) continue;
    const uint64_t id = draft_id(r.seq_id);
    int64_t seen = s.draft_offset + engine_.sequence_length(id);
    if (seen >= m - 1) continue;
    if (opts_.draft_context > 0 && m - 1 - seen > opts_.draft_context) {
      engine_.release(id);
      s.draft_offset = m - 1 - opts_.draft_context;
      seen = s.draft_offset;
    }
    draft.push_back({id, {s.tokens.begin() + seen, s.tokens.begin() + m - 1}});
  }
  if (!full.empty()) timed_forward(full, false, {}, stats_.catch_up);
  PassCounters drafter;
  if (!draft.empty()) timed_forward(draft, false, opts_.draft, drafter);
  add_to(stats_.catch_up, drafter);
  return drafter;
}

std::vector<std::vector<int32_t>> SpeculativeDecoder::step(
    const std::vector<SpeculativeRequest>& requests) {
  if (requests.empty()) return {};
  for (const SpeculativeRequest& r : requests) {
    sequence(r.seq_id);
    if (r.limit < 1)
      throw Error("speculative decoding: sequence " + std::to_string(r.seq_id) + ": limit " +
                  std::to_string(r.limit) + " (at least 1)");
  }
  const SpeculationDecision d = controller_.decide(static_cast<int64_t>(requests.size()));
  ++stats_.rounds;
  ++stats_.decisions[static_cast<int>(d.reason)];
  return d.speculate ? speculative_round(requests, d.gamma) : plain_round(requests);
}

std::vector<std::vector<int32_t>> SpeculativeDecoder::plain_round(
    const std::vector<SpeculativeRequest>& requests) {
  const int64_t V = engine_.config().vocab_size;
  const int64_t n = static_cast<int64_t>(requests.size());
  std::vector<SequenceTokens> full;
  for (const SpeculativeRequest& r : requests) {
    const Sequence& s = sequence(r.seq_id);
    const int64_t f = engine_.sequence_length(r.seq_id);
    full.push_back({r.seq_id, {s.tokens.begin() + f, s.tokens.end()}});
  }
  const double before = stats_.plain.seconds;
  const std::vector<float> logits = timed_forward(full, false, {}, stats_.plain);
  // Only steady single-token steps teach the controller what a plain step costs.
  const bool steady = std::all_of(full.begin(), full.end(),
                                  [](const SequenceTokens& t) { return t.tokens.size() == 1; });
  if (steady) controller_.record_plain(n, stats_.plain.seconds - before);
  ++stats_.plain_rounds;
  std::vector<std::vector<int32_t>> out(n);
  for (int64_t i = 0; i < n; ++i) {
    Sequence& s = sequence(requests[i].seq_id);
    out[i] = {pick(s, logits.data() + i * V, nullptr)};
    emit(s, out[i]);
  }
  return out;
}

std::vector<std::vector<int32_t>> SpeculativeDecoder::speculative_round(
    const std::vector<SpeculativeRequest>& requests, int64_t gamma) {
  const int64_t V = engine_.config().vocab_size;
  const int64_t n = static_cast<int64_t>(requests.size());
  int64_t rounds_gamma = 0;
  for (const SpeculativeRequest& r : requests) {
    Sequence& s = sequence(r.seq_id);
    s.gamma = std::min<int64_t>(gamma, r.limit - 1);
    s.drafts.clear();
    s.draft_dists.clear();
    rounds_gamma = std::max(rounds_gamma, s.gamma);
  }
  const PassCounters drafter_catch_up = catch_up(requests);

  SpeculativeRound measured;
  measured.batch = n;
  measured.catch_up_seconds = drafter_catch_up.seconds;
  measured.catch_up_rows = drafter_catch_up.rows;

  // Draft: pass i feeds each sequence still drafting its previous draft (the first pass: the
  // tokens the drafter has not seen, one or two) and draws its i-th draft with the reduced budget.
  const double draft_before = stats_.draft.seconds;
  for (int64_t i = 0; i < rounds_gamma; ++i) {
    std::vector<SequenceTokens> batch;
    std::vector<Sequence*> drafting;
    for (const SpeculativeRequest& r : requests) {
      Sequence& s = sequence(r.seq_id);
      if (s.gamma <= i) continue;
      const uint64_t id = draft_id(r.seq_id);
      if (i == 0) {
        const int64_t seen = s.draft_offset + engine_.sequence_length(id);
        batch.push_back({id, {s.tokens.begin() + seen, s.tokens.end()}});
      } else {
        batch.push_back({id, {s.drafts.back()}});
      }
      drafting.push_back(&s);
    }
    const std::vector<float> logits = timed_forward(batch, false, opts_.draft, stats_.draft);
    for (size_t j = 0; j < drafting.size(); ++j) {
      Sequence& s = *drafting[j];
      std::vector<float> dist;
      s.drafts.push_back(pick(s, logits.data() + j * V, s.greedy ? nullptr : &dist));
      if (!s.greedy) s.draft_dists.push_back(std::move(dist));
      ++stats_.drafted_at[i];
    }
  }
  measured.draft_seconds = stats_.draft.seconds - draft_before;

  // Verify: the last accepted token and every draft of every sequence in one full-model pass.
  std::vector<SequenceTokens> batch;
  for (const SpeculativeRequest& r : requests) {
    const Sequence& s = sequence(r.seq_id);
    SequenceTokens t{r.seq_id, {s.tokens.back()}};
    t.tokens.insert(t.tokens.end(), s.drafts.begin(), s.drafts.end());
    batch.push_back(std::move(t));
  }
  const double verify_before = stats_.verify.seconds;
  const std::vector<float> logits = timed_forward(batch, true, {}, stats_.verify);
  measured.verify_seconds = stats_.verify.seconds - verify_before;

  std::vector<std::vector<int32_t>> out(n);
  int64_t row = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t id = requests[i].seq_id;
    Sequence& s = sequence(id);
    const float* rows = logits.data() + row * V;
    row += s.gamma + 1;
    Verdict v;
    if (s.greedy) {
      v = verify_greedy(rows, s.drafts.data(), s.gamma, V);
    } else {
      std::vector<std::vector<float>> target;
      auto p = [&](int64_t at) -> const float* {
        while (static_cast<int64_t>(target.size()) <= at)
          target.push_back(s.sampler.distribution(rows + target.size() * V, V));
        return target[at].data();
      };
      v = verify_sampled(p, s.draft_dists, s.drafts.data(), s.gamma, V, s.rng, opts_.acceptance);
    }
    for (int64_t k = 0; k < v.accepted; ++k) ++stats_.accepted_at[k];
    measured.drafted += s.gamma;
    measured.accepted += v.accepted;
    measured.rejected += v.accepted < s.gamma ? 1 : 0;
    measured.verified_rows += s.gamma + 1;
    out[i].assign(s.drafts.begin(), s.drafts.begin() + v.accepted);
    out[i].push_back(v.next);
    emit(s, out[i]);
    measured.emitted += static_cast<int64_t>(out[i].size());
    // Roll both caches back past the first rejected token (or a stop token): each keeps at most
    // every emitted token but the last, which the next round feeds.
    const int64_t keep = static_cast<int64_t>(s.tokens.size()) - 1;
    engine_.truncate(id, keep);
    engine_.truncate(draft_id(id), keep - s.draft_offset);
  }
  controller_.record_speculative(measured);
  ++stats_.speculative_rounds;
  stats_.drafted += measured.drafted;
  stats_.accepted += measured.accepted;
  return out;
}

}  // namespace moeflow
