#include "api/generation_stream.h"

namespace moeflow::api {

GenerationStream::GenerationStream(caf::actor_system& system, const scheduler_actor& scheduler,
                                   uint64_t id, GenerationRequestPtr request)
    : queue_(std::make_shared<Queue>()), scheduler_(scheduler), id_(id) {
  auto queue = queue_;
  auto push = [queue](StreamEvent e) {
    {
      std::lock_guard<std::mutex> lock(queue->mutex);
      queue->events.push_back(std::move(e));
    }
    queue->ready.notify_one();
  };
  sink_ = system.spawn([push](caf::event_based_actor* self) -> caf::behavior {
    return {
        [push](token_atom, uint64_t, int32_t token) {
          push({StreamEvent::token, token, {}, {}});
        },
        [self, push](done_atom, uint64_t, const GenerationResultPtr& r) {
          push({StreamEvent::done, 0, r, {}});
          self->quit();
        },
        [self, push](fail_atom, uint64_t, const std::string& why) {
          push({StreamEvent::failed, 0, {}, why});
          self->quit();
        },
    };
  });
  caf::anon_send(scheduler_, stream_atom::value, id_, std::move(request), sink_);
}

GenerationStream::~GenerationStream() {
  if (!ended_) caf::anon_send(scheduler_, cancel_atom::value, id_);
  caf::anon_send_exit(sink_, caf::exit_reason::user_shutdown);
}

std::optional<StreamEvent> GenerationStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(queue_->mutex);
  if (!queue_->ready.wait_for(lock, timeout, [&] { return !queue_->events.empty(); }))
    return std::nullopt;
  StreamEvent e = std::move(queue_->events.front());
  queue_->events.pop_front();
  if (e.kind != StreamEvent::token) ended_ = true;
  return e;
}

}  // namespace moeflow::api
