#include "scaling/replica_placement.h"

#include <algorithm>
#include <limits>

namespace moeflow {

std::vector<double> node_loads(const PlacementLoad& in) {
  std::vector<double> load(static_cast<size_t>(in.nodes), 0.0);
  for (size_t l = 0; l < in.holders.size(); ++l)
    for (size_t e = 0; e < in.holders[l].size(); ++e) {
      const auto& h = in.holders[l][e];
      if (h.empty() || l >= in.tokens.size() || e >= in.tokens[l].size()) continue;
      const double share = in.tokens[l][e] / static_cast<double>(h.size());
      for (int n : h) load[static_cast<size_t>(n)] += share;
    }
  return load;
}

std::vector<int> place_replicas(const std::vector<ScalingAction>& actions, PlacementLoad in) {
  std::vector<double> load = node_loads(in);
  std::vector<int> out;
  for (const ScalingAction& a : actions) {
    if (a.kind != ScalingAction::Kind::add) {
      out.push_back(-1);
      continue;
    }
    auto& h = in.holders.at(static_cast<size_t>(a.layer)).at(static_cast<size_t>(a.expert));
    int best = -1;
    double best_load = std::numeric_limits<double>::infinity();
    for (int n = 0; n < in.nodes; ++n)
      if (std::find(h.begin(), h.end(), n) == h.end() &&
          (in.room.empty() || in.room[static_cast<size_t>(n)] > 0) &&
          load[static_cast<size_t>(n)] < best_load) {
        best = n;
        best_load = load[static_cast<size_t>(n)];
      }
    out.push_back(best);
    if (best < 0) continue;
    // The expert's tokens now split over one more holder.
    const double tokens =
        in.tokens.at(static_cast<size_t>(a.layer)).at(static_cast<size_t>(a.expert));
    const double before = tokens / static_cast<double>(h.size());
    const double after = tokens / static_cast<double>(h.size() + 1);
    for (int n : h) load[static_cast<size_t>(n)] -= before - after;
    load[static_cast<size_t>(best)] += after;
    h.push_back(best);
    if (!in.room.empty()) --in.room[static_cast<size_t>(best)];
  }
  return out;
}

}  // namespace moeflow
