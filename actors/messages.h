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

#include "model/generator.h"
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
};

// Logits [sequences, vocab] of each sequence's last new token.
struct StepResult {
  std::vector<float> logits;
  int64_t vocab = 0;
  // Per MoE layer: microseconds from dispatching the layer's rows to the last shard's reply
  // (expert compute plus, for remote shards, the network round trip).
  std::vector<double> layer_wait_us;
};

struct PlacementUpdate;
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

CAF_BEGIN_TYPE_ID_BLOCK(moeflow, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(moeflow, (moeflow::TokenBatchPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::ExpertOutputPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::StepRequestPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::StepResultPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::GenerationRequestPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::GenerationResultPtr))
CAF_ADD_TYPE_ID(moeflow, (moeflow::PlacementUpdatePtr))
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
// (true) comes once it is in use.
using router_actor =
    caf::typed_actor<caf::replies_to<step_atom, StepRequestPtr>::with<StepResultPtr>,
                     caf::reacts_to<release_atom, uint64_t>,
                     caf::replies_to<placement_atom, PlacementUpdatePtr>::with<bool>>;

// The scheduler: batches generation requests into router steps (continuous batching).
// Streaming: (stream_atom, id, request, sink) makes the scheduler send the sink
// (token_atom, id, token) for each generated token, then (done_atom, id, result) or
// (fail_atom, id, message). (cancel_atom, id) drops a streamed request and frees its cache.
// (configure_atom, max_running, max_waiting, kv_budget_tokens, prefill_chunk) changes the limits
// for the requests admitted from then on.
using scheduler_actor = caf::typed_actor<
    caf::replies_to<generate_atom, GenerationRequestPtr>::with<GenerationResultPtr>,
    caf::reacts_to<stream_atom, uint64_t, GenerationRequestPtr, caf::actor>,
    caf::reacts_to<cancel_atom, uint64_t>, caf::reacts_to<tick_atom>,
    caf::reacts_to<configure_atom, int64_t, int64_t, int64_t, int64_t>>;

// Why a request was refused before it ran: the HTTP layer maps these to status codes.
inline constexpr const char* kOverloadedPrefix = "overloaded: ";

}  // namespace moeflow
