#include "actors/speculator_actor.h"

#include <cstdio>

#include "actors/actor_system_setup.h"
#include "core/error.h"
#include "graph/expert_ranges.h"

namespace moeflow {
namespace {

using self_ptr = speculator_actor::stateful_pointer<speculator_state>;

void say(const speculator_state& st, const std::string& line) {
  if (st.options.log) return st.options.log("speculator: " + line);
  std::fprintf(stderr, "moeflow speculator: %s\n", line.c_str());
}

// The options the decoder runs with now: while a resident set is still being observed, the
// drafter routes over every expert (with an explicit top-k, so that the router counts its routing
// even when that is the model's own).
SpeculativeOptions current_options(const speculator_state& st) {
  SpeculativeOptions o = st.settings.options;
  if (st.settings.resident_observed > 0 && !st.resident_chosen) {
    o.draft.resident.clear();
    if (o.draft.top_k == 0) o.draft.top_k = st.backend->config().top_k;
  }
  return o;
}

// A new decoder with `opts`, taking over every adopted sequence (their drafter caches are
// dropped: they were built with the old budget). Throws moeflow::Error for options the model
// cannot honour; then nothing has changed.
void rebuild(speculator_state& st, const SpeculativeOptions& opts) {
  auto next = std::make_unique<SpeculativeDecoder>(*st.backend, opts);
  for (const auto& [id, seq] : st.sequences) {
    std::vector<int32_t> tokens = st.decoder->tokens(id);
    st.decoder->forget(id);
    next->add(id, std::move(tokens), seq->sampling, seq->stop_tokens);
  }
  st.decoder = std::move(next);
  st.published = {};
}

std::string describe_resident(const std::vector<std::vector<int32_t>>& resident) {
  std::string out;
  for (size_t l = 0; l < resident.size(); ++l) {
    if (resident[l].empty()) continue;
    const std::vector<int64_t> ids(resident[l].begin(), resident[l].end());
    out += (out.empty() ? "layer " : "; layer ") + std::to_string(l) + ": " + format_ranges(ids);
  }
  return out;
}

// With `resident_observed`, once enough draft rows were seen: keep the experts they used most.
void choose_resident(speculator_state& st) {
  const SpeculativeSettings& s = st.settings;
  if (s.resident_observed <= 0 || st.resident_chosen || st.backend->draft_rows() < s.observe_rows)
    return;
  std::vector<int64_t> use = st.backend->draft_use();
  const ModelConfig& cfg = st.backend->config();
  use.resize(cfg.num_layers * cfg.num_experts, 0);
  st.settings.options.draft.resident = most_used_experts(use, cfg, s.resident_observed);
  st.resident_chosen = true;
  rebuild(st, current_options(st));
  say(st, "resident experts chosen from " + std::to_string(st.backend->draft_rows()) +
              " observed draft rows: " + describe_resident(st.settings.options.draft.resident));
}

void publish(speculator_state& st) {
  const SpeculativeStats& now = st.decoder->stats();
  if (st.options.metrics) {
    const SpeculationDecision& d = st.decoder->controller().last();
    st.options.metrics->round(st.published, now, d.speculate ? d.gamma : 0);
  }
  st.published = now;
}

void configure(speculator_state& st, const SpeculativeSettings& settings) {
  const SpeculativeSettings old = st.settings;
  const bool old_chosen = st.resident_chosen;
  st.settings = settings;
  st.resident_chosen = false;
  st.backend->clear_draft_use();
  try {
    if (st.decoder)
      rebuild(st, current_options(st));
    else
      st.decoder = std::make_unique<SpeculativeDecoder>(*st.backend, current_options(st));
  } catch (const Error& e) {
    st.settings = old;
    st.resident_chosen = old_chosen;
    say(st, std::string("settings refused, the old ones stay: ") + e.what());
    return;
  }
  if (st.options.metrics) st.options.metrics->enabled(settings.enabled);
  say(st, std::string(settings.enabled ? "on" : "off") + ", draft top-k " +
              std::to_string(settings.options.draft.top_k) + ", " +
              (settings.options.control.adaptive
                   ? "adaptive gamma " + std::to_string(settings.options.control.gamma_min) + "-" +
                         std::to_string(settings.options.control.gamma_max)
                   : "gamma " + std::to_string(settings.options.control.gamma)));
}

}  // namespace

speculator_actor::behavior_type make_speculator(
    speculator_actor::stateful_pointer<speculator_state> self, router_actor router,
    ModelConfig config, SpeculativeSettings settings, SpeculatorOptions options) {
  auto& st = self->state;
  st.options = std::move(options);
  st.backend = std::make_unique<RouterBackend>(self->system(), std::move(router), std::move(config),
                                               st.options.step_timeout);
  configure(st, settings);
  return {
      [self](adopt_atom, const SpeculativeSequencePtr& seq) {
        auto& st = self->state;
        const int64_t cached = static_cast<int64_t>(seq->tokens.size()) - 1;
        st.backend->adopt(seq->seq_id, cached);
        try {
          if (!st.decoder) throw Error("no valid speculative settings");
          st.decoder->add(seq->seq_id, seq->tokens, seq->sampling, seq->stop_tokens);
          st.sequences[seq->seq_id] = seq;
        } catch (const Error& e) {
          // Its next round fails with "never added", which ends the request with that reason.
          say(st, "sequence " + std::to_string(seq->seq_id) + " refused: " + e.what());
        }
      },
      [self](round_atom,
             const SpeculativeRoundRequestPtr& request) -> caf::result<SpeculativeRoundResultPtr> {
        auto& st = self->state;
        if (!st.decoder) return make_moeflow_error("speculation: no valid settings");
        auto result = std::make_shared<SpeculativeRoundResult>();
        const int64_t batch = static_cast<int64_t>(request->sequences.size());
        try {
          for (size_t i = 0; i < request->decoded.size() && i < request->sequences.size(); ++i) {
            const std::vector<int32_t>& tokens = request->decoded[i];
            if (tokens.empty()) continue;
            const uint64_t id = request->sequences[i].seq_id;
            st.backend->advance(id, static_cast<int64_t>(tokens.size()));
            st.decoder->append_decoded(id, tokens);
          }
          st.decoder->record_plain_elsewhere(batch, request->plain_steps, request->timed_steps,
                                             request->timed_seconds);
          result->tokens = st.decoder->step(request->sequences);
          result->plain_ahead = st.decoder->controller().plain_rounds_ahead(batch);
          publish(st);
          choose_resident(st);
        } catch (const Error& e) {
          return make_moeflow_error(std::string("speculative round: ") + e.what());
        }
        return SpeculativeRoundResultPtr(std::move(result));
      },
      [self](release_atom, uint64_t seq_id) {
        auto& st = self->state;
        st.sequences.erase(seq_id);
        if (st.decoder) return st.decoder->finish(seq_id);
        st.backend->release(seq_id);
        st.backend->release(SpeculativeDecoder::draft_id(seq_id));
      },
      [self](forget_atom, uint64_t seq_id) {
        auto& st = self->state;
        st.sequences.erase(seq_id);
        if (st.decoder) st.decoder->forget(seq_id);
      },
      [self](configure_atom, const SpeculativeSettingsPtr& settings) {
        configure(self->state, *settings);
      },
  };
}

}  // namespace moeflow
