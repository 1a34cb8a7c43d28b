#include "model/device_step.h"

#include "core/error.h"

namespace moeflow {

void check_device_routing(const DeviceRouting& r, const ModelConfig& cfg, const std::string& who) {
  if (r.layer < 0 || r.layer >= cfg.num_layers)
    throw Error(who + ": routing of layer " + std::to_string(r.layer) + " of " +
                std::to_string(cfg.num_layers));
  if (r.rows < 0)
    throw Error(who + ": layer " + std::to_string(r.layer) + ": routing of " +
                std::to_string(r.rows) + " rows");
  if (r.rows == 0) return;
  if (r.top_k < 1 || r.top_k > cfg.num_experts)
    throw Error(who + ": layer " + std::to_string(r.layer) + ": routing of " +
                std::to_string(r.rows) + " rows with top-" + std::to_string(r.top_k) +
                " (the model has " + std::to_string(cfg.num_experts) + " experts)");
  if (!r.expert_rows || !r.experts || !r.weights)
    throw Error(who + ": layer " + std::to_string(r.layer) + ": routing of " +
                std::to_string(r.rows) + " rows without " +
                (!r.expert_rows ? "expert rows"
                 : !r.experts   ? "expert ids"
                                : "weights"));
}

std::vector<RowRun> row_runs(const std::vector<int64_t>& rows, int64_t n, const std::string& who) {
  std::vector<RowRun> runs;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    if (r < 0 || r >= n)
      throw Error(who + ": row " + std::to_string(r) + " (wanted as output " + std::to_string(i) +
                  ") of " + std::to_string(n) + " rows");
    const int64_t target = static_cast<int64_t>(i);
    if (!runs.empty() && runs.back().source + runs.back().count == r)
      ++runs.back().count;
    else
      runs.push_back({r, target, 1});
  }
  return runs;
}

bool is_identity(const std::vector<RowRun>& runs, int64_t n) {
  return n == 0
             ? runs.empty()
             : runs.size() == 1 && runs[0].source == 0 && runs[0].target == 0 && runs[0].count == n;
}

void require_every_expert(const ModelConfig& cfg,
                          const std::function<bool(int64_t layer, int64_t expert)>& holds,
                          const std::string& who) {
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    if (!cfg.layer_is_moe[l]) continue;
    for (int64_t e = 0; e < cfg.num_experts; ++e)
      if (!holds(l, e))
        throw Error(who + ": layer " + std::to_string(l) + " expert " + std::to_string(e) +
                    " is not held by the expert stage (the device-resident step needs every "
                    "expert on the router's GPU)");
  }
}

}  // namespace moeflow
