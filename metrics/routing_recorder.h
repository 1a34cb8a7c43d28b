#pragma once
// The routing statistics of a running router, computed off the decode path.
//
// The router hands each MoE layer's top-k choices to record(): a copy into a bounded queue and
// nothing else (when the queue is full the layer's routing is skipped and counted, never waited
// for). A background thread folds the queue into per-expert token counters and one
// SpecialisationWindow per layer; each full window publishes the layer's gauges (docs/metrics.md,
// "Specialisation") and becomes the reference for the next window's drift.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "metrics/registry.h"
#include "metrics/specialisation.h"

namespace moeflow::metrics {

struct RoutingRecorderOptions {
  std::size_t window_tokens = 4096;  // tokens of one layer per window
  bool per_expert = true;            // false: token counters per layer (expert="all")
  CollapseThresholds thresholds;
  std::size_t queue_capacity = 1024;  // layers' routings waiting for the reducer
  std::chrono::milliseconds period{100};
};

class RoutingRecorder {
 public:
  // moe_layers: the model's MoE layer indices; replicas[layer][expert]: how many shards hold each
  // expert (indexed by model layer; dense layers may be empty).
  // Keeps `registry` alive as long as the recorder (actors may outlive whoever made both).
  RoutingRecorder(std::shared_ptr<Registry> registry, std::vector<int64_t> moe_layers,
                  std::size_t experts, std::vector<std::vector<int>> replicas,
                  RoutingRecorderOptions options = {});
  ~RoutingRecorder();
  RoutingRecorder(const RoutingRecorder&) = delete;
  RoutingRecorder& operator=(const RoutingRecorder&) = delete;

  // One MoE layer of one step: experts[row * top_k + j] is row's j-th choice (best first) and
  // weights the matching combine weights. Copies and returns; never blocks on the reducer.
  void record(int64_t layer, int64_t top_k, std::span<const int32_t> experts,
              std::span<const float> weights);

  // Folds in everything recorded so far, now (tests and scrapes that need fresh numbers; the
  // background thread does the same every `period`).
  void flush();

  // Tokens routed to each expert since start, [model layer][expert] (empty rows: dense layers),
  // as of the last reduction.
  std::vector<std::vector<uint64_t>> token_totals() const;

  // The routing matrix as JSON (GET /routing, see docs/metrics.md).
  std::string routing_json() const;

  // Replaces the replica counts (after a placement change).
  void set_replicas(std::vector<std::vector<int>> replicas);

 private:
  struct Entry {
    int64_t layer = 0;
    int64_t top_k = 0;
    std::vector<int32_t> experts;
    std::vector<float> weights;
  };
  struct Layer {
    Layer(int64_t index, std::size_t experts, const CollapseThresholds& thresholds)
        : layer(index), window(experts, thresholds), tokens(experts, 0) {}
    int64_t layer = 0;
    SpecialisationWindow window;
    std::vector<uint64_t> tokens;          // per expert, since start
    std::vector<double> last_load;         // p̄ of the last complete window (empty before one)
    std::vector<Counter*> token_counters;  // per expert, or one when !per_expert
    uint64_t windows = 0;
    // Created with the first complete window: before it there is nothing to show.
    Gauge *entropy = nullptr, *effective = nullptr, *fsi = nullptr, *fsi_ratio = nullptr,
          *drift = nullptr, *max_over_mean = nullptr, *cv = nullptr, *heterogeneity = nullptr,
          *dead = nullptr, *collapse = nullptr;
    Counter* windows_total = nullptr;
  };

  void run();
  void reduce(std::deque<Entry>& work);
  void fold(Layer& layer, const Entry& entry);
  void publish_window(Layer& layer);
  void create_gauges(Layer& layer);
  void publish_replicas();
  Layer* find_layer(int64_t layer);

  std::shared_ptr<Registry> registry_;
  const std::size_t experts_;
  const RoutingRecorderOptions options_;
  Counter& skipped_;

  std::mutex queue_mutex_;
  std::condition_variable wake_;
  std::deque<Entry> queue_;
  bool stop_ = false;

  mutable std::mutex state_mutex_;  // layers_ and replicas_
  std::vector<Layer> layers_;
  std::vector<int> layer_slot_;  // model layer -> index into layers_, -1 for dense layers
  std::vector<std::vector<int>> replicas_;
  std::mutex flush_mutex_;  // one reducer at a time (the thread or flush())
  std::thread thread_;
};

}  // namespace moeflow::metrics
