#include "transport/nccl_rank_factory.h"

#include <exception>
#include <utility>

namespace moeflow::transport {

NcclRank::NcclRank(std::unique_ptr<NcclCommunicator> communicator)
    : communicator_(std::move(communicator)) {}

void NcclRank::abort() {
  communicator_->abort();
}

NcclRankFactory::NcclRankFactory(NcclTimeouts timeouts, std::function<void()> wake)
    : timeouts_(timeouts), wake_(std::move(wake)) {}

NcclRankFactory::~NcclRankFactory() {
  for (Worker& w : workers_) w.thread.join();
  // Results never delivered: their communicators end with the queue (aborted unless healthy,
  // see ~NcclCommunicator).
}

void NcclRankFactory::join_finished() {
  for (size_t i = 0; i < workers_.size();) {
    if (*workers_[i].done) {
      workers_[i].thread.join();
      workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void NcclRankFactory::start_forming(const GpuGroup& group, int rank) {
  join_finished();
  const int32_t device = group.members.at(static_cast<size_t>(rank)).device;
  auto done = std::make_shared<std::atomic<bool>>(false);
  // The thread gets copies: the group may be gone when it ends.
  std::thread thread([this, done, generation = group.generation, id = group.unique_id,
                      nranks = group.nranks(), rank, device] {
    Result result{generation, rank, nullptr, ""};
    try {
      result.formed = std::make_unique<NcclRank>(
          std::make_unique<NcclCommunicator>(id, nranks, rank, device, timeouts_));
    } catch (const std::exception& e) {
      result.failure = e.what();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      results_.push_back(std::move(result));
    }
    queued_.notify_all();
    if (wake_) wake_();
    *done = true;
  });
  workers_.push_back({std::move(thread), std::move(done)});
}

std::vector<GpuGroupReady> NcclRankFactory::deliver(GpuGroupParticipant& participant) {
  std::deque<Result> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ready.swap(results_);
  }
  std::vector<GpuGroupReady> answers;
  for (Result& r : ready) {
    std::optional<GpuGroupReady> answer =
        r.formed ? participant.rank_formed(r.generation, r.rank, std::move(r.formed))
                 : participant.rank_failed(r.generation, r.rank, std::move(r.failure));
    if (answer) answers.push_back(std::move(*answer));
  }
  join_finished();
  return answers;
}

bool NcclRankFactory::wait_for_result(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return queued_.wait_for(lock, timeout, [this] { return !results_.empty(); });
}

}  // namespace moeflow::transport
