#include "metrics/routing_recorder.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace moeflow::metrics {
namespace {

Labels layer_labels(int64_t layer) {
  return {{"layer", std::to_string(layer)}};
}

}  // namespace

RoutingRecorder::RoutingRecorder(std::shared_ptr<Registry> registry,
                                 std::vector<int64_t> moe_layers, std::size_t experts,
                                 std::vector<std::vector<int>> replicas,
                                 RoutingRecorderOptions options)
    : registry_(std::move(registry)),
      experts_(experts),
      options_(options),
      skipped_(registry_->counter("moeflow_routing_skipped_steps_total",
                                  "MoE layer routings not recorded because the statistics queue "
                                  "was full")) {
  if (experts == 0) throw Error("routing recorder: a model without experts");
  if (options_.window_tokens == 0) throw Error("routing recorder: window_tokens must be > 0");
  int64_t max_layer = -1;
  for (int64_t l : moe_layers) max_layer = std::max(max_layer, l);
  layer_slot_.assign(static_cast<std::size_t>(max_layer + 1), -1);
  layers_.reserve(moe_layers.size());
  for (int64_t l : moe_layers) {
    layer_slot_[l] = static_cast<int>(layers_.size());
    const Labels labels = layer_labels(l);
    Layer layer(l, experts, options_.thresholds);
    if (options_.per_expert) {
      for (std::size_t e = 0; e < experts; ++e)
        layer.token_counters.push_back(&registry_->counter(
            "moeflow_expert_tokens_total", "Tokens the router sent to each expert",
            {{"layer", std::to_string(l)}, {"expert", std::to_string(e)}}));
    } else {
      layer.token_counters.push_back(&registry_->counter(
          "moeflow_expert_tokens_total", "Tokens the router sent to each expert",
          {{"layer", std::to_string(l)}, {"expert", "all"}}));
    }
    layer.windows_total = &registry_->counter("moeflow_routing_windows_total",
                                              "Specialisation windows completed", labels);
    layers_.push_back(std::move(layer));
  }
  replicas_ = std::move(replicas);
  publish_replicas();
  thread_ = std::thread([this] { run(); });
}

RoutingRecorder::~RoutingRecorder() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RoutingRecorder::record(int64_t layer, int64_t top_k, std::span<const int32_t> experts,
                             std::span<const float> weights) {
  Entry entry{layer, top_k, {experts.begin(), experts.end()}, {weights.begin(), weights.end()}};
  std::lock_guard<std::mutex> lock(queue_mutex_);
  if (queue_.size() >= options_.queue_capacity) {
    skipped_.inc();
    return;
  }
  queue_.push_back(std::move(entry));
}

void RoutingRecorder::flush() {
  std::deque<Entry> work;
  std::lock_guard<std::mutex> reducing(flush_mutex_);
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    work.swap(queue_);
  }
  reduce(work);
}

void RoutingRecorder::run() {
  std::unique_lock<std::mutex> lock(queue_mutex_);
  while (!stop_) {
    wake_.wait_for(lock, options_.period, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

RoutingRecorder::Layer* RoutingRecorder::find_layer(int64_t layer) {
  if (layer < 0 || layer >= static_cast<int64_t>(layer_slot_.size()) || layer_slot_[layer] < 0)
    return nullptr;
  return &layers_[layer_slot_[layer]];
}

void RoutingRecorder::reduce(std::deque<Entry>& work) {
  for (const Entry& entry : work) {
    std::lock_guard<std::mutex> lock(state_mutex_);
    if (Layer* layer = find_layer(entry.layer)) fold(*layer, entry);
  }
}

void RoutingRecorder::fold(Layer& layer, const Entry& entry) {
  const std::size_t k = static_cast<std::size_t>(entry.top_k);
  if (k == 0 || entry.experts.size() != entry.weights.size() || entry.experts.size() % k != 0)
    return;  // the router never sends such a batch; nothing sensible to count
  std::vector<uint64_t> added(experts_, 0);
  std::vector<std::size_t> ids;
  std::vector<double> weights;
  for (std::size_t row = 0; row < entry.experts.size() / k; ++row) {
    ids.clear();
    weights.clear();
    for (std::size_t j = 0; j < k; ++j) {
      const int32_t e = entry.experts[row * k + j];
      const float w = entry.weights[row * k + j];
      if (e < 0 || static_cast<std::size_t>(e) >= experts_) continue;
      ids.push_back(static_cast<std::size_t>(e));
      weights.push_back(w > 0.0f ? w : 0.0);
      ++added[e];
    }
    if (ids.empty()) continue;
    double total = 0.0;
    for (double w : weights) total += w;
    if (total <= 0.0) std::fill(weights.begin(), weights.end(), 1.0);  // zero weights: uniform
    layer.window.add_top_k(ids, weights);
    if (layer.window.tokens() >= options_.window_tokens) publish_window(layer);
  }
  for (std::size_t e = 0; e < experts_; ++e) {
    if (added[e] == 0) continue;
    layer.tokens[e] += added[e];
    layer.token_counters[options_.per_expert ? e : 0]->add(static_cast<double>(added[e]));
  }
}

void RoutingRecorder::create_gauges(Layer& layer) {
  const Labels labels = layer_labels(layer.layer);
  auto gauge = [&](const char* name, const char* help) {
    return &registry_->gauge(name, help, labels);
  };
  layer.entropy = gauge("moeflow_routing_entropy_nats",
                        "Entropy of the layer's mean routing distribution (last window)");
  layer.effective = gauge("moeflow_routing_effective_experts",
                          "exp(entropy): effective number of experts (last window)");
  layer.fsi = gauge("moeflow_routing_fsi",
                    "Fisher Specialisation Index: Fisher-Rao distance of the mean routing "
                    "distribution to uniform (last window)");
  layer.fsi_ratio =
      gauge("moeflow_routing_fsi_ratio", "Fisher Specialisation Index over its maximum, in [0, 1]");
  layer.drift = gauge("moeflow_routing_drift",
                      "Fisher-Rao distance between the last two windows' mean routing "
                      "distributions");
  layer.max_over_mean = gauge("moeflow_routing_load_max_over_mean",
                              "Tokens of the busiest expert over the mean (last window)");
  layer.cv = gauge("moeflow_routing_load_cv",
                   "Coefficient of variation of tokens per expert (last window)");
  layer.heterogeneity = gauge("moeflow_routing_heterogeneity",
                              "Mean Fisher-Rao distance of tokens' routing to the mean, over pi");
  layer.dead =
      gauge("moeflow_routing_dead_experts", "Experts that got no token in the last window");
  layer.collapse = gauge("moeflow_routing_collapse_warning",
                         "1 when the last window meets the routing collapse rule "
                         "(docs/metrics.md)");
}

void RoutingRecorder::publish_window(Layer& layer) {
  const LayerSpecialisation s = layer.window.summary();
  if (!layer.entropy) create_gauges(layer);
  layer.entropy->set(s.entropy_nats);
  layer.effective->set(s.effective_experts);
  layer.fsi->set(s.fisher_specialisation_index);
  layer.fsi_ratio->set(s.fisher_specialisation_ratio);
  layer.drift->set(
      layer.last_load.empty() ? 0.0 : fisher_rao_distance(layer.last_load, s.mean_distribution));
  layer.max_over_mean->set(s.load_max_over_mean);
  layer.cv->set(s.load_coefficient_of_variation);
  layer.heterogeneity->set(s.heterogeneity);
  layer.dead->set(static_cast<double>(s.dead_experts));
  layer.collapse->set(s.collapse_warning ? 1.0 : 0.0);
  layer.windows_total->inc();
  ++layer.windows;
  layer.last_load = s.mean_distribution;
  layer.window.reset();
}

void RoutingRecorder::set_replicas(std::vector<std::vector<int>> replicas) {
  std::lock_guard<std::mutex> lock(state_mutex_);
  replicas_ = std::move(replicas);
  publish_replicas();
}

void RoutingRecorder::publish_replicas() {
  for (const Layer& layer : layers_) {
    const auto l = static_cast<std::size_t>(layer.layer);
    const std::vector<int> none;
    const std::vector<int>& row = l < replicas_.size() ? replicas_[l] : none;
    auto replicas_of = [&row](std::size_t e) { return e < row.size() ? row[e] : 0; };
    const std::string help = "Expert shards holding each expert";
    if (options_.per_expert) {
      for (std::size_t e = 0; e < experts_; ++e)
        registry_
            ->gauge("moeflow_expert_replicas", help,
                    {{"layer", std::to_string(l)}, {"expert", std::to_string(e)}})
            .set(replicas_of(e));
    } else {
      double total = 0;
      for (std::size_t e = 0; e < experts_; ++e) total += replicas_of(e);
      registry_
          ->gauge("moeflow_expert_replicas", help,
                  {{"layer", std::to_string(l)}, {"expert", "all"}})
          .set(total);
    }
  }
}

std::vector<std::vector<uint64_t>> RoutingRecorder::token_totals() const {
  std::lock_guard<std::mutex> lock(state_mutex_);
  std::vector<std::vector<uint64_t>> totals(layer_slot_.size());
  for (const Layer& layer : layers_) totals[static_cast<size_t>(layer.layer)] = layer.tokens;
  return totals;
}

std::string RoutingRecorder::routing_json() const {
  std::lock_guard<std::mutex> lock(state_mutex_);
  nlohmann::json layers = nlohmann::json::array();
  for (const Layer& layer : layers_) {
    const auto l = static_cast<std::size_t>(layer.layer);
    std::vector<int> replicas(experts_, 0);
    if (l < replicas_.size())
      for (std::size_t e = 0; e < experts_ && e < replicas_[l].size(); ++e)
        replicas[e] = replicas_[l][e];
    layers.push_back({{"layer", layer.layer},
                      {"tokens", layer.tokens},
                      {"window_load", layer.last_load},
                      {"replicas", replicas},
                      {"window_tokens", options_.window_tokens},
                      {"windows", layer.windows}});
  }
  return nlohmann::json{{"experts", experts_}, {"layers", layers}}.dump();
}

}  // namespace moeflow::metrics
