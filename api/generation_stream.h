#pragma once
// One request's tokens as they come from the scheduler: a small actor receives the scheduler's
// (token | done | fail) messages and queues them for the HTTP thread, which waits on the queue.
// Closing the stream before the end cancels the request in the scheduler (client gone).
#include <caf/all.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "actors/messages.h"

namespace moeflow::api {

struct StreamEvent {
  enum Kind { token, done, failed } kind = token;
  int32_t token_id = 0;
  GenerationResultPtr result;  // done
  std::string error;           // failed
};

class GenerationStream {
 public:
  // Submits `request` to the scheduler.
  GenerationStream(caf::actor_system& system, const scheduler_actor& scheduler, uint64_t id,
                   GenerationRequestPtr request);
  ~GenerationStream();  // cancels the request unless it ended

  // The next event, or nullopt after `timeout`.
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout);

 private:
  struct Queue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<StreamEvent> events;
  };
  std::shared_ptr<Queue> queue_;
  scheduler_actor scheduler_;
  caf::actor sink_;
  uint64_t id_;
  bool ended_ = false;
};

}  // namespace moeflow::api
