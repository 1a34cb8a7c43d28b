#pragma once
// The router node's NCCL group (docs/nccl.md), wired: the controller, this node's own
// participant (when the router node holds GPU shards, its ranks form here) and the metrics,
// behind one mutex, so that the bridge's I/O thread (nodes down and up, gpu_group_ready
// answers), a graph reload and the service's own ticker (forming results of the local ranks,
// the forming deadline, metrics) may all call in. It sends nothing itself: `send` hands a
// gpu_group for a remote node to the bridge.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "actors/gpu_group_metrics.h"
#include "graph/graph.h"
#include "metrics/registry.h"
#include "transport/gpu_group_controller.h"
#include "transport/gpu_group_participant.h"
#include "transport/nccl_rank_factory.h"

namespace moeflow {

struct GpuGroupServiceOptions {
  std::string node;  // the router node's name in the graph
  transport::GpuGroupControllerOptions controller;
  transport::NcclTimeouts forming;                       // each local rank's NcclCommunicator
  std::chrono::milliseconds tick{100};                   // the ticker's period
  transport::GpuGroupController::UniqueIdMaker make_id;  // empty: make_nccl_unique_id
  transport::GpuGroupLog log;  // the controller's and the local ranks' lines; empty: stderr
  // The first generation is the wall clock in milliseconds, so that a restarted router node's
  // generations are newer than its previous process's (members ignore older ones). Tests turn
  // it off to count from controller.first_generation.
  bool generations_from_clock = true;
};

class GpuGroupService {
 public:
  // Called (under the service's lock) for each remote member node of a new generation; must
  // not block (Bridge::send_gpu_group queues it).
  using Send = std::function<void(const std::string& node, const transport::GpuGroup& group)>;

  // registry: where moeflow_gpu_group_* go; null: none.
  GpuGroupService(GpuGroupServiceOptions options, Send send, metrics::Registry* registry);
  // Stops the ticker and ends the local ranks; waits for local forming threads (each ends
  // within options.forming.init).
  ~GpuGroupService();
  GpuGroupService(const GpuGroupService&) = delete;
  GpuGroupService& operator=(const GpuGroupService&) = delete;

  // At start-up and after each graph applied. Throws moeflow::Error as plan_gpu_group does.
  void apply_graph(const GraphSpec& graph);
  void node_down(const std::string& node);
  void node_up(const std::string& node);
  // A remote member's gpu_group_ready.
  void answer(const transport::GpuGroupReady& ready);

  bool gpu_data_plane() const;
  transport::GpuGroupStatus status() const;
  std::string failure() const;

 private:
  void carry_out(const transport::GpuGroupCommand& command);  // holding mutex_
  void tick();

  GpuGroupServiceOptions options_;
  Send send_;
  std::unique_ptr<GpuGroupMetrics> metrics_;
  mutable std::mutex mutex_;
  transport::GpuGroupController controller_;
  // Declared before the participant, which holds a reference to it.
  transport::NcclRankFactory factory_;
  transport::GpuGroupParticipant local_;
  std::condition_variable stop_cv_;
  bool stop_ = false;  // guarded by mutex_
  std::thread ticker_;
};

}  // namespace moeflow
