#pragma once
// speculator: self-speculative decoding in the serving path. It runs model/speculative.h's
// SpeculativeDecoder over a RouterBackend, so every draft and verify pass is a router step and
// the expert shards of every node take part (a draft budget reaches them as fewer pairs).
//
// The decoder is synchronous (a round waits for γ draft steps and a verify step), so the
// speculator is spawned detached (`spawn<caf::detached>`): it has a thread of its own and blocks
// there, never a CAF worker. The scheduler prefills prompts itself, hands each sequence over once
// its first token is sampled (adopt), and sends one round at a time for all of its decoding
// sequences. A failed round fails with the router's reason; the scheduler ends the requests in it.
#include <caf/all.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "actors/messages.h"
#include "actors/router_backend.h"
#include "actors/speculative_metrics.h"

namespace moeflow {

struct SpeculatorOptions {
  caf::timespan step_timeout = std::chrono::seconds(30);  // each router step of a round
  std::shared_ptr<SpeculativeMetrics> metrics;            // null: metrics off
  std::function<void(const std::string&)> log;            // null: stderr
};

struct speculator_state {
  static inline const char* name = "speculator";
  // Declared so the state is not an aggregate: CAF would try to build it from the actor pointer.
  speculator_state() = default;

  std::unique_ptr<RouterBackend> backend;
  std::unique_ptr<SpeculativeDecoder> decoder;  // null until valid settings arrive
  SpeculativeSettings settings;
  bool resident_chosen = false;                          // for settings.resident_observed
  std::map<uint64_t, SpeculativeSequencePtr> sequences;  // adopted, for rebuilding the decoder
  SpeculativeStats published;                            // the decoder's stats already exported
  SpeculatorOptions options;
};

speculator_actor::behavior_type make_speculator(
    speculator_actor::stateful_pointer<speculator_state> self, router_actor router,
    ModelConfig config, SpeculativeSettings settings, SpeculatorOptions options);

}  // namespace moeflow
