#pragma once
// The router node's side of the NCCL group's control plane (docs/nccl.md): decides when a new
// generation of the group is announced (gpu_group), collects the members' answers
// (gpu_group_ready) and says whether the GPU data plane may be used. A plain state machine: no
// sockets, no threads, no NCCL; the unique id and the time come from injected functions, so the
// tests drive it deterministically and the router node's actor feeds it events.
//
// Membership is the graph's plan (plan_gpu_group) without the nodes reported down
// (plan_without_node). A new generation, with a fresh unique id, is announced when that
// membership differs from the current group's and has at least two members; below two, the
// group ends and nothing is sent. A failed generation is retried by the next graph applied or
// node back up, even when the membership is the same.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "graph/graph.h"
#include "transport/gpu_group.h"
#include "transport/gpu_group_plan.h"
#include "transport/gpu_group_state.h"

namespace moeflow::transport {

struct GpuGroupControllerOptions {
  // From an announcement to every member's "formed"; past it the generation has failed.
  std::chrono::milliseconds forming_timeout{60000};
  // The first generation announced (>= 1). Members ignore a gpu_group no newer than the newest
  // they saw, so a restarted controller must not count from 1 again: the router node starts
  // from the wall clock in milliseconds (GpuGroupService).
  uint64_t first_generation = 1;
};

// What the controller wants done after an event.
struct GpuGroupCommand {
  // A new generation: send it as gpu_group to every node of announce->nodes() (the router
  // node's own participant included, when it holds a rank).
  std::optional<GpuGroup> announce;
  // The group ended with no successor (fewer than two members left): the router node's own
  // participant ends its ranks. Remote members learn of it only with the next generation.
  bool ended = false;
};

// The values of moeflow_gpu_group_generation, _members and _state.
struct GpuGroupStatus {
  uint64_t generation = 0;  // the newest announced (or attempted); first_generation - 1 before
  int members = 0;          // ranks of the current generation; 0 when none
  GpuGroupState state = GpuGroupState::none;
};

class GpuGroupController {
 public:
  // Makes a fresh NCCL unique id (make_nccl_unique_id() in the real wiring); may throw, which
  // fails that generation.
  using UniqueIdMaker = std::function<NcclUniqueIdBytes()>;
  using Now = std::function<std::chrono::steady_clock::time_point()>;

  GpuGroupController(UniqueIdMaker make_id, Now now, GpuGroupControllerOptions options = {},
                     GpuGroupLog log = {});

  // At start-up and after each graph reload. Throws moeflow::Error for a graph whose GPU shards
  // cannot form a group (plan_gpu_group's limits).
  GpuGroupCommand apply_graph(const GraphSpec& graph);
  // The bridge marked `node` down (peer_down_ms) / up again. A node that holds no rank of the
  // current group changes nothing (NCCL's sockets run between members only).
  GpuGroupCommand node_down(std::string_view node);
  GpuGroupCommand node_up(std::string_view node);
  // A member's gpu_group_ready. Answers of another generation, from a node that holds no rank,
  // or about a device that is not a member are ignored (and logged).
  void answer(const GpuGroupReady& ready);
  // Checks the forming deadline; call it now and then (every heartbeat, say).
  void tick();

  GpuGroupState state() const { return state_; }
  // The current generation while forming or formed; null otherwise.
  const GpuGroup* group() const;
  // Whether batches between GPU shards may move over NCCL: the current generation formed.
  bool gpu_data_plane() const { return state_ == GpuGroupState::formed; }
  // Why the current generation failed (which node and device, or the deadline); "" otherwise.
  const std::string& failure() const { return failure_; }
  GpuGroupStatus status() const;

 private:
  // Announces a generation for the current membership when it changed (or `retry_failed` and
  // the current generation failed).
  GpuGroupCommand reconsider(const std::string& cause, bool retry_failed);
  std::vector<GpuGroupMember> wanted_members() const;
  void fail(std::string why);
  std::string member_text(int rank) const;

  UniqueIdMaker make_id_;
  Now now_;
  GpuGroupControllerOptions options_;
  GpuGroupLog log_;

  GpuGroupPlan graph_plan_;                  // the members of the graph applied last
  std::set<std::string, std::less<>> down_;  // nodes reported down and not back
  uint64_t generation_ = 0;  // the newest announced or attempted (first_generation - 1 before)
  GpuGroup current_;         // that generation (members empty when none)
  GpuGroupState state_ = GpuGroupState::none;
  std::vector<bool> formed_;  // per rank of current_
  std::chrono::steady_clock::time_point deadline_{};
  std::string failure_;
};

}  // namespace moeflow::transport
