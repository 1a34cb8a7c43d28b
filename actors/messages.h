#pragma once
// Every message type the actors exchange, their atoms and the CAF type-id block: the one place a
// CAF upgrade has to touch (with actors/actor_system_setup.h).
//
// Tensors move between actors of one process as shared pointers to immutable data: a TokenBatch
// whose pairs all go to one shard reaches it without a copy (split batches copy only the rows
// each shard needs, see model/dispatch.h). Across nodes they travel in
// moeflow's own wire format (transport/), never as serialised CAF messages.
#include <caf/all.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/expert_budget.h"
#include "model/generator.h"
#include "model/speculative.h"
#include "model/step_plan.h"
#include "model/token_batch.h"

namespace moeflow {

// The experts' summed, weighted output for the rows of one TokenBatch.
struct ExpertOutput {
  int64_t layer = 0;
  std::vector<float> rows;  // [batch rows, hidden]
  int64_t computed = 0;     // (row, expert) pairs computed
};

// One forward step for the router: sequences and their new tokens.
struct StepRequest {
  std::vector<SequenceTokens> sequences;
  // Routes every MoE layer within this budget (a speculative draft pass; shards just see fewer
  // pairs); the default is the model's own routing.
  ExpertBudget budget;
  bool all_positions = false;  // logits for every new token, not only each sequence's last
};

// Logits [sequences, vocab] of each sequence's last new token (with all_positions: [new tokens,
// vocab] in request order).
struct StepResult {
  std::vector<float> logits;
  int64_t vocab = 0;
  int64_t rows = 0;  // tokens the step ran
  // Only for a request with a budget: [layer * num_experts + expert] (row, expert) pairs routed
  // there, to choose a drafter's resident experts from observed routing.
  std::vector<int64_t> expert_use;
  // Per MoE layer: microseconds from dispatching the layer's rows to the last shard's reply
  // (expert compute plus, for remote shards, the network round trip).
  std::vector<double> layer_wait_us;
};

// A sequence the scheduler hands to the speculator once its prompt is prefilled: the prompt and
// the tokens generated so far; the router's cache holds every one of them but the last.
struct SpeculativeSequence {
  uint64_t seq_id = 0;
  std::vector<int32_t> tokens;
  SamplingParams sampling;
  std::vector<int64_t> stop_tokens;  // a round emits nothing after one of these
};

// One round of the speculator over these sequences, each with the most tokens it may produce.
// While the speculator predicts plain decoding to be faster, the scheduler decodes its sequences
// itself (it saves the speculator's hops); the next round brings the tokens it decoded so.
struct SpeculativeRoundRequest {
  std::vector<SpeculativeRequest> sequences;
  // Parallel to `sequences` (or empty): tokens the scheduler decoded plainly since the sequence's
  // last round; the router's cache holds all of them but the last.
  std::vector<std::vector<int32_t>> decoded;
  int64_t plain_steps = 0;     // plain steps the scheduler ran instead of rounds
  int64_t timed_steps = 0;     // of which steady decode steps (no prompt in them) ...
  double timed_seconds = 0.0;  // ... taking this long in all
};

// Each sequence's new tokens (1 to its limit), in request order.
struct SpeculativeRoundResult {
  std::vector<std::vector<int32_t>> tokens;
  // Rounds the speculator expects to decode plainly from here (until its next probe): the
  // scheduler may run that many plain steps itself instead of asking.
  int64_t plain_ahead = 0;
};

// The speculator's settings (the graph's [speculative] section, docs/speculative.md).
struct SpeculativeSettings {
  bool enabled = false;
  SpeculativeOptions options;
  // > 0: draft with options.draft.top_k over every expert first, then keep this many experts per
  // MoE layer, those the drafts used most (options.draft.resident is then ignored).
  int64_t resident_observed = 0;
  int64_t observe_rows = 256;  // draft rows observed before choosing them
};

struct PlacementUpdate;
using SpeculativeSequencePtr = std::shared_ptr<const SpeculativeSequence>;
using SpeculativeRoundRequestPtr = std::shared_ptr<const SpeculativeRoundRequest>;
using SpeculativeRoundResultPtr = std::shared_ptr<const SpeculativeRoundResult>;
using SpeculativeSettingsPtr = std::shared_ptr<const SpeculativeSettings>;
using ExpertOutputPtr = std::shared_ptr<const ExpertOutput>;
using PlacementUpdatePtr = std::shared_ptr<const PlacementUpdate>;
using StepRequestPtr = std::shared_ptr<const StepRequest>;
using StepResultPtr = std::shared_ptr<const StepResult>;
using GenerationRequestPtr = std::shared_ptr<const GenerationRequest>;
using GenerationResultPtr = std::shared_ptr<const GenerationResult>;

}  // namespace moeflow

// These pointers never leave the process (the wire format carries tensors between nodes), so
// they need no serialisation.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::TokenBatchPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::ExpertOutputPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::StepRequestPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::StepResultPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::GenerationRequestPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::GenerationResultPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::PlacementUpdatePtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::SpeculativeSequencePtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::SpeculativeRoundRequestPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::SpeculativeRoundResultPtr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(moeflow::SpeculativeSettingsPtr)

CAF_BEGIN_TYPE_ID_BLOCK(moeflow, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(moeflow, (moeflow::TokenBatchPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::ExpertOutputPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::StepRequestPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::StepResultPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::GenerationRequestPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::GenerationResultPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::PlacementUpdatePtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::SpeculativeSequencePtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::SpeculativeRoundRequestPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::SpeculativeRoundResultPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::SpeculativeSettingsPtr))
CAF_END_TYPE_ID_BLOCK(moeflow)

namespace moeflow {

using run_atom = caf::atom_constant<caf::atom("run")>;              // expert shard: run a batch
using step_atom = caf::atom_constant<caf::atom("step")>;            // router: one forward step
using release_atom = caf::atom_constant<caf::atom("release")>;      // router: free a sequence
using generate_atom = caf::atom_constant<caf::atom("generate")>;    // scheduler: a request
using tick_atom = caf::atom_constant<caf::atom("tick")>;            // scheduler: next decode step
using reply_atom = caf::atom_constant<caf::atom("reply")>;          // bridge: a remote reply
using fail_atom = caf::atom_constant<caf::atom("fail")>;            // a remote or stream failure
using stream_atom = caf::atom_constant<caf::atom("stream")>;        // scheduler: streamed request
using token_atom = caf::atom_constant<caf::atom("token")>;          // stream: one new token
using done_atom = caf::atom_constant<caf::atom("done")>;            // stream: finished
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;        // scheduler: drop a request
using placement_atom = caf::atom_constant<caf::atom("placement")>;  // router: new placement
using configure_atom = caf::atom_constant<caf::atom("configure")>;  // scheduler: new limits
using truncate_atom = caf::atom_constant<caf::atom("truncate")>;    // router: roll a sequence back
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;          // speculator: a new sequence
using round_atom = caf::atom_constant<caf::atom("round")>;          // speculator: one round
using forget_atom = caf::atom_constant<caf::atom("forget")>;        // speculator: back to plain

// An expert shard: runs the experts it holds over a batch.
using expert_shard_actor =
    caf::typed_actor<caf::replies_to<run_atom, TokenBatchPtr>::with<ExpertOutputPtr>>;

// An expert shard on another node, reached through the bridge; the router sees it as an
// expert_shard_actor.
using remote_shard_actor =
    expert_shard_actor::extend<caf::reacts_to<reply_atom, uint64_t, ExpertOutputPtr>,
                               caf::reacts_to<fail_atom, uint64_t, std::string>>;

// Owners of each (layer, expert): indices into `shards`. owners[layer][expert] lists every
// replica; owners[layer] is empty for a dense layer.
using ExpertOwners = std::vector<std::vector<std::vector<int>>>;

// A new placement for the router: the shards it may send rows to and which experts each holds.
// The router applies it between steps; the step in flight finishes on the old one.
struct PlacementUpdate {
  std::vector<expert_shard_actor> shards;
  ExpertOwners owners;
};

// The router: embeddings, attention, gates, KV cache; dispatches rows to shards per layer.
// (placement_atom, update) replaces the shards and owners from the next step on; the reply
// (true) comes once it is in use. (truncate_atom, id, length) drops a sequence's cached tokens
// past `length` at once: the sender must have no step of that sequence in flight.
using router_actor =
    caf::typed_actor<caf::replies_to<step_atom, StepRequestPtr>::with<StepResultPtr>,
                     caf::reacts_to<release_atom, uint64_t>,
                     caf::reacts_to<truncate_atom, uint64_t, int64_t>,
                     caf::replies_to<placement_atom, PlacementUpdatePtr>::with<bool>>;

// The speculator (actors/speculator_actor.h): self-speculative decoding through the router.
// (adopt_atom, sequence) registers a prefilled sequence; (round_atom, request) runs one round
// (draft passes and a verify pass, or one plain step) and replies with each sequence's new tokens;
// (release_atom, id) frees both of its caches; (forget_atom, id) frees only the drafter's (the
// scheduler decodes it plainly from then on); (configure_atom, settings) replaces the settings,
// from the next round on.
using speculator_actor = caf::typed_actor<
    caf::reacts_to<adopt_atom, SpeculativeSequencePtr>,
    caf::replies_to<round_atom, SpeculativeRoundRequestPtr>::with<SpeculativeRoundResultPtr>,
    caf::reacts_to<release_atom, uint64_t>, caf::reacts_to<forget_atom, uint64_t>,
    caf::reacts_to<configure_atom, SpeculativeSettingsPtr>>;

// The scheduler: batches generation requests into router steps (continuous batching).
// Streaming: (stream_atom, id, request, sink) makes the scheduler send the sink
// (token_atom, id, token) for each generated token, then (done_atom, id, result) or
// (fail_atom, id, message). (cancel_atom, id) drops a streamed request and frees its cache.
// (configure_atom, max_running, max_waiting, kv_budget_tokens, prefill_chunk) changes the limits
// for the requests admitted from then on; (configure_atom, settings) turns speculation on or off
// and passes the settings on to the speculator (ignored without one).
using scheduler_actor = caf::typed_actor<
    caf::replies_to<generate_atom, GenerationRequestPtr>::with<GenerationResultPtr>,
    caf::reacts_to<stream_atom, uint64_t, GenerationRequestPtr, caf::actor>,
    caf::reacts_to<cancel_atom, uint64_t>, caf::reacts_to<tick_atom>,
    caf::reacts_to<configure_atom, int64_t, int64_t, int64_t, int64_t>,
    caf::reacts_to<configure_atom, SpeculativeSettingsPtr>>;

// Why a request was refused before it ran: the HTTP layer maps these to status codes.
inline constexpr const char* kOverloadedPrefix = "overloaded: ";

}  // namespace moeflow
