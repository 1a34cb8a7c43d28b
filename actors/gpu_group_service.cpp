#include "actors/gpu_group_service.h"

#include <utility>

namespace moeflow {

using transport::GpuGroupCommand;
using transport::GpuGroupReady;

namespace {

// A router node restarted while its members kept running must announce generations newer than
// any it announced before (members ignore older ones): count from the wall clock.
GpuGroupServiceOptions with_first_generation(GpuGroupServiceOptions options) {
  if (options.generations_from_clock)
    options.controller.first_generation =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
  return options;
}

}  // namespace

GpuGroupService::GpuGroupService(GpuGroupServiceOptions options, Send send,
                                 metrics::Registry* registry)
    : options_(with_first_generation(std::move(options))),
      send_(std::move(send)),
      metrics_(registry ? std::make_unique<GpuGroupMetrics>(*registry) : nullptr),
      controller_(
          options_.make_id ? options_.make_id : transport::make_nccl_unique_id,
          [] { return std::chrono::steady_clock::now(); }, options_.controller, options_.log),
      factory_(options_.forming),
      local_(options_.node, factory_, options_.log) {
  ticker_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_cv_.wait_for(lock, options_.tick, [this] { return stop_; })) {
      lock.unlock();
      tick();
      lock.lock();
    }
  });
}

GpuGroupService::~GpuGroupService() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  ticker_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  local_.end_group();
}

void GpuGroupService::carry_out(const GpuGroupCommand& command) {
  if (command.ended) local_.end_group();
  if (command.announce) {
    for (const std::string& node : command.announce->nodes()) {
      if (node != options_.node) {
        send_(node, *command.announce);
        continue;
      }
      if (std::optional<GpuGroupReady> ready = local_.on_group(*command.announce))
        controller_.answer(*ready);
    }
  }
  if (metrics_) metrics_->publish(controller_.status());
}

void GpuGroupService::apply_graph(const GraphSpec& graph) {
  std::lock_guard<std::mutex> lock(mutex_);
  carry_out(controller_.apply_graph(graph));
}

void GpuGroupService::node_down(const std::string& node) {
  std::lock_guard<std::mutex> lock(mutex_);
  carry_out(controller_.node_down(node));
}

void GpuGroupService::node_up(const std::string& node) {
  std::lock_guard<std::mutex> lock(mutex_);
  carry_out(controller_.node_up(node));
}

void GpuGroupService::answer(const GpuGroupReady& ready) {
  std::lock_guard<std::mutex> lock(mutex_);
  controller_.answer(ready);
  if (metrics_) metrics_->publish(controller_.status());
}

void GpuGroupService::tick() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const GpuGroupReady& ready : factory_.deliver(local_)) controller_.answer(ready);
  controller_.tick();
  if (metrics_) metrics_->publish(controller_.status());
}

bool GpuGroupService::gpu_data_plane() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return controller_.gpu_data_plane();
}

transport::GpuGroupStatus GpuGroupService::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return controller_.status();
}

std::string GpuGroupService::failure() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return controller_.failure();
}

}  // namespace moeflow
