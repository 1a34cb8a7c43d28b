#pragma once
// A node's side of the NCCL group's control plane (docs/nccl.md): takes the controller's
// gpu_group, forms one communicator per member device of this node and produces the
// gpu_group_ready answer. A plain state machine: no sockets, no threads of its own. Forming
// blocks until every rank has joined, so it goes through an injected GpuRankFactory that
// starts it elsewhere (the real one on a thread of its own) and whose result comes back as an
// event, rank_formed() or rank_failed(), on the owner's thread.
//
// Generations only move forward: a gpu_group older than (or as old as) the newest seen is
// ignored, and the communicators of an older generation are aborted before the new ones start
// forming (they may hang on a lost peer; two generations must never mix).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "transport/gpu_group.h"
#include "transport/gpu_group_state.h"

namespace moeflow::transport {

// One formed rank of this node. The real one holds an NcclCommunicator; tests use a fake.
class GpuRank {
 public:
  virtual ~GpuRank() = default;
  // Ends the communicator: operations in flight fail and every later one throws. Idempotent.
  virtual void abort() = 0;
};

// Starts forming ranks of this node.
class GpuRankFactory {
 public:
  virtual ~GpuRankFactory() = default;
  // Starts forming `rank` of `group` (on CUDA device group.members[rank].device) and returns at
  // once; the result comes back as GpuGroupParticipant::rank_formed() / rank_failed() with
  // group.generation and `rank`. May throw when it cannot even start: that rank fails.
  virtual void start_forming(const GpuGroup& group, int rank) = 0;
};

class GpuGroupParticipant {
 public:
  // `node`: this node's name in the graph. `factory` must outlive the participant.
  GpuGroupParticipant(std::string node, GpuRankFactory& factory, GpuGroupLog log = {});
  // Aborts whatever it holds.
  ~GpuGroupParticipant();
  GpuGroupParticipant(const GpuGroupParticipant&) = delete;
  GpuGroupParticipant& operator=(const GpuGroupParticipant&) = delete;

  // A gpu_group from the controller. Returns the answer to send when it is already known (a
  // rank that could not start forming); otherwise it comes from rank_formed / rank_failed.
  std::optional<GpuGroupReady> on_group(const GpuGroup& group);
  // The result of a start_forming. The answer comes once every rank of this node formed, or at
  // the first that failed (ranks still forming then are reported failed too, and the ranks of
  // that generation that formed are aborted: the group cannot work without the failed one).
  // Results of an older or failed generation are aborted and dropped.
  std::optional<GpuGroupReady> rank_formed(uint64_t generation, int rank,
                                           std::unique_ptr<GpuRank> formed);
  std::optional<GpuGroupReady> rank_failed(uint64_t generation, int rank, std::string why);
  // The group ended without a successor (the controller's GpuGroupCommand::ended, or shutdown):
  // aborts every rank held.
  void end_group();

  // The newest generation seen (0 before the first gpu_group).
  uint64_t generation() const { return generation_; }
  GpuGroupState state() const { return state_; }
  // The communicator of this node's rank on `device` once every rank of this node formed
  // (state formed), else null.
  GpuRank* rank_on(int32_t device) const;

 private:
  struct LocalRank {
    int rank = 0;
    int32_t device = 0;
    std::unique_ptr<GpuRank> formed;  // set once formed
    std::string failure;              // set once failed
  };
  LocalRank* find(uint64_t generation, int rank, const char* event);
  std::optional<GpuGroupReady> answer_if_done();
  void abort_all(const std::string& why);
  std::string where(const LocalRank& r) const;

  std::string node_;
  GpuRankFactory& factory_;
  GpuGroupLog log_;
  uint64_t generation_ = 0;
  int nranks_ = 0;
  std::vector<LocalRank> ranks_;  // this node's ranks of generation_, ascending
  GpuGroupState state_ = GpuGroupState::none;
};

}  // namespace moeflow::transport
