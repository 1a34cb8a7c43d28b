#pragma once
// The real GpuRankFactory of GpuGroupParticipant (docs/nccl.md): each rank forms as an
// NcclCommunicator on a thread of its own, since the constructor blocks until every rank of the
// group has joined (up to NcclTimeouts::init); the result waits in a queue until the
// participant's owner hands it over with deliver(), on the owner's thread. Plain C++ over
// nccl_communicator.h, so it builds everywhere; without CUDA or NCCL each rank fails with the
// communicator's reason.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/gpu_group_participant.h"
#include "transport/nccl/nccl_communicator.h"

namespace moeflow::transport {

// A formed rank: the communicator the GPU data plane sends through.
class NcclRank : public GpuRank {
 public:
  explicit NcclRank(std::unique_ptr<NcclCommunicator> communicator);
  void abort() override;
  NcclCommunicator& communicator() { return *communicator_; }

 private:
  std::unique_ptr<NcclCommunicator> communicator_;
};

class NcclRankFactory : public GpuRankFactory {
 public:
  // `wake` (optional) is called from a forming thread after it queued its result, so that an
  // owner waiting in poll() can look (the expert node's loop wakes every 100 ms anyway).
  explicit NcclRankFactory(NcclTimeouts timeouts = {}, std::function<void()> wake = {});
  // Waits for the forming threads still running: each ends within timeouts.init.
  ~NcclRankFactory();
  NcclRankFactory(const NcclRankFactory&) = delete;
  NcclRankFactory& operator=(const NcclRankFactory&) = delete;

  void start_forming(const GpuGroup& group, int rank) override;
  // Hands every queued result to `participant` (rank_formed / rank_failed) and returns the
  // answers that produced, to send to the controller.
  std::vector<GpuGroupReady> deliver(GpuGroupParticipant& participant);
  // Blocks until a result is queued or `timeout` passed; whether one is queued.
  bool wait_for_result(std::chrono::milliseconds timeout);

 private:
  struct Result {
    uint64_t generation = 0;
    int rank = 0;
    std::unique_ptr<GpuRank> formed;
    std::string failure;
  };
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void join_finished();

  NcclTimeouts timeouts_;
  std::function<void()> wake_;
  std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<Result> results_;   // guarded by mutex_
  std::vector<Worker> workers_;  // the owner's thread only
};

}  // namespace moeflow::transport
