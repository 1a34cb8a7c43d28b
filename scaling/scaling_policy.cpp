#include "scaling/scaling_policy.h"

#include <cmath>
#include <cstdio>

namespace moeflow {
namespace {

double layer_mean(const std::vector<double>& tokens) {
  double sum = 0;
  for (double t : tokens) sum += t;
  return tokens.empty() ? 0.0 : sum / static_cast<double>(tokens.size());
}

std::string format(const char* fmt, double a, double b) {
  char text[160];
  std::snprintf(text, sizeof text, fmt, a, b);
  return text;
}

int total_added(const ReplicaMatrix& added) {
  int n = 0;
  for (const auto& row : added)
    for (int a : row) n += a;
  return n;
}

std::vector<ScalingAction> threshold(const ScalingSpec& spec, const ScalingInput& in) {
  std::vector<ScalingAction> actions;
  int budget = in.expert_mb > 0 ? static_cast<int>(std::floor(spec.memory_mb / in.expert_mb)) -
                                      total_added(in.added)
                                : 0;
  for (size_t l = 0; l < in.tokens.size(); ++l) {
    const auto& tokens = in.tokens[l];
    const double mean = layer_mean(tokens);
    for (size_t e = 0; e < tokens.size(); ++e) {
      const int replicas = in.graph_replicas[l][e] + in.added[l][e];
      const double per_replica = tokens[e] / replicas;
      const int64_t layer = static_cast<int64_t>(l), expert = static_cast<int64_t>(e);
      if (mean > 0 && per_replica > spec.hot_load * mean && replicas < spec.max_replicas &&
          budget > 0) {
        actions.push_back({ScalingAction::Kind::add, layer, expert, "hot",
                           format("load per replica %.1fx the layer mean (over %.2f)",
                                  per_replica / mean, spec.hot_load)});
        --budget;
      } else if (in.added[l][e] > 0 && in.retirable[l][e] > 0) {
        if (mean <= 0) {
          actions.push_back({ScalingAction::Kind::retire, layer, expert, "idle",
                             "no tokens in the layer this window"});
        } else if (tokens[e] / (replicas - 1) < spec.cold_load * mean) {
          actions.push_back({ScalingAction::Kind::retire, layer, expert, "cold",
                             format("load per replica without it %.2fx the mean (under %.2f)",
                                    tokens[e] / (replicas - 1) / mean, spec.cold_load)});
        }
      }
    }
  }
  return actions;
}

std::vector<ScalingAction> eplb(const ScalingSpec& spec, const ScalingInput& in) {
  // Target added replicas: the budget handed out one at a time to the highest relative load per
  // replica.
  ReplicaMatrix target = in.added;
  for (auto& row : target)
    for (int& a : row) a = 0;
  int budget = in.expert_mb > 0 ? static_cast<int>(std::floor(spec.memory_mb / in.expert_mb)) : 0;
  std::vector<double> means;
  for (const auto& row : in.tokens) means.push_back(layer_mean(row));
  while (budget > 0) {
    double best = 0;
    size_t bl = 0, be = 0;
    for (size_t l = 0; l < in.tokens.size(); ++l)
      for (size_t e = 0; e < in.tokens[l].size(); ++e) {
        const int replicas = in.graph_replicas[l][e] + target[l][e];
        if (means[l] <= 0 || replicas >= spec.max_replicas) continue;
        const double load = in.tokens[l][e] / replicas / means[l];
        if (load > best) best = load, bl = l, be = e;
      }
    if (best <= 1.0) break;  // no expert above its layer's mean: a replica would not help
    ++target[bl][be];
    --budget;
  }
  std::vector<ScalingAction> actions;
  for (size_t l = 0; l < in.tokens.size(); ++l)
    for (size_t e = 0; e < in.tokens[l].size(); ++e) {
      const int64_t layer = static_cast<int64_t>(l), expert = static_cast<int64_t>(e);
      const std::string detail = "EPLB target " + std::to_string(target[l][e]) +
                                 " added replica(s), now " + std::to_string(in.added[l][e]);
      for (int a = in.added[l][e]; a < target[l][e]; ++a)
        actions.push_back({ScalingAction::Kind::add, layer, expert, "eplb", detail});
      for (int a = in.added[l][e]; a > target[l][e] && in.retirable[l][e] > in.added[l][e] - a; --a)
        actions.push_back({ScalingAction::Kind::retire, layer, expert, "eplb", detail});
    }
  return actions;
}

}  // namespace

const char* action_name(ScalingAction::Kind kind) {
  return kind == ScalingAction::Kind::add ? "add" : "retire";
}

std::vector<ScalingAction> decide_scaling(const ScalingSpec& spec, const ScalingInput& in) {
  if (!spec.enabled) return {};
  return spec.policy == "eplb" ? eplb(spec, in) : threshold(spec, in);
}

}  // namespace moeflow
