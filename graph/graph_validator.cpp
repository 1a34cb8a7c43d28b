// Checks against the model: ids exist, listed layers are MoE layers, and every expert of every MoE
// layer has at least one shard.
#include <algorithm>
#include <map>

#include "graph/expert_ranges.h"
#include "graph/graph_checks.h"
#include "model/model_config.h"

namespace moeflow::graph_detail {
namespace {

// "layer 3 is" / "layers 3-5 are"
std::string subject(const char* noun, const std::vector<int64_t>& ids) {
  return std::string(noun) + (ids.size() == 1 ? " " : "s ") + format_ranges(ids) +
         (ids.size() == 1 ? " is" : " are");
}

std::string count_range(int64_t n) {
  return n == 1 ? "0" : "0-" + std::to_string(n - 1);
}

std::vector<int64_t> moe_layers(const ModelConfig& model) {
  std::vector<int64_t> out;
  for (int64_t l = 0; l < model.num_layers; ++l)
    if (l < static_cast<int64_t>(model.layer_is_moe.size()) && model.layer_is_moe[l])
      out.push_back(l);
  return out;
}

void check_shard_ids(const ShardSpec& s, const ModelConfig& model, std::vector<Diagnostic>& out) {
  const std::string who = "shard " + in_quotes(s.name) + ": ";
  std::vector<int64_t> outside, dense;
  for (int64_t l : s.layers) {
    if (l >= model.num_layers)
      outside.push_back(l);
    else if (!model.layer_is_moe[l])
      dense.push_back(l);
  }
  if (!outside.empty())
    out.push_back({s.layers_where,
                   who + subject("layer", outside) + " outside the model, which has " +
                       std::to_string(model.num_layers) + " layers (" +
                       count_range(model.num_layers) + ")",
                   "layers count from 0"});
  if (!dense.empty())
    out.push_back(
        {s.layers_where,
         who + subject("layer", dense) + " dense in this model (an MLP, no experts to hold)",
         "its MoE layers are " + format_ranges(moe_layers(model)) +
             "; list only those, or write layers = \"all\""});
  std::vector<int64_t> bad_experts;
  for (int64_t e : s.experts)
    if (e >= model.num_experts) bad_experts.push_back(e);
  if (!bad_experts.empty())
    out.push_back({s.experts_where,
                   who + subject("expert", bad_experts) + " outside the model, which has " +
                       std::to_string(model.num_experts) + " experts per MoE layer (" +
                       count_range(model.num_experts) + ")",
                   "experts count from 0"});
}

void check_coverage(const GraphSpec& g, const ModelConfig& model, std::vector<Diagnostic>& out) {
  // Missing experts -> the MoE layers missing exactly those, so that a gap shared by every layer
  // is one line, not one per layer.
  std::map<std::vector<int64_t>, std::vector<int64_t>> layers_by_gap;
  for (int64_t l : moe_layers(model)) {
    std::vector<int64_t> missing;
    for (int64_t e = 0; e < model.num_experts; ++e)
      if (std::none_of(g.shards.begin(), g.shards.end(),
                       [&](const ShardSpec& s) { return s.owns(l, e); }))
        missing.push_back(e);
    if (!missing.empty()) layers_by_gap[missing].push_back(l);
  }
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> gaps(layers_by_gap.begin(),
                                                                          layers_by_gap.end());
  std::sort(gaps.begin(), gaps.end(),
            [](const auto& a, const auto& b) { return a.second.front() < b.second.front(); });
  // Point at the first shard in the file: that is where the split is written.
  SourceLocation where = g.model.where;
  const auto first = std::min_element(
      g.shards.begin(), g.shards.end(), [](const ShardSpec& a, const ShardSpec& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
      });
  if (first != g.shards.end()) where = first->where;
  for (const auto& [experts, layers] : gaps) {
    const std::string layer_part =
        (layers.size() == 1 ? "layer " : "layers ") + format_ranges(layers);
    out.push_back({where, layer_part + ": " + subject("expert", experts) + " owned by no shard",
                   g.shards.empty() ? "add [shards.NAME] tables with node and experts"
                                    : "add them to a shard's experts, or write experts = \"all\""});
  }
}

// [speculative]: the draft budget must be one the model can honour, and smaller than the model.
void check_speculative(const SpeculativeSpec& sp, const ModelConfig& model,
                       std::vector<Diagnostic>& out) {
  const std::string top_k = std::to_string(model.top_k);
  if (sp.draft_top_k > model.top_k)
    out.push_back({sp.draft_top_k_where,
                   "draft_top_k " + std::to_string(sp.draft_top_k) +
                       " in [speculative] is above the model's top-k of " + top_k,
                   "a drafter routes each token to fewer experts than the model: 1-" + top_k});
  const bool full_top_k = sp.draft_top_k == 0 || sp.draft_top_k == model.top_k;
  if (sp.enabled && full_top_k && sp.resident.empty() && sp.resident_count == 0)
    out.push_back({sp.draft_top_k_where,
                   "[speculative]: the drafter would be the full model (top-k " + top_k +
                       ", every expert resident)",
                   "set draft_top_k below " + top_k + " or give a resident set"});
  if (sp.resident_count > model.num_experts)
    out.push_back({sp.resident_where,
                   "resident " + std::to_string(sp.resident_count) +
                       " in [speculative] is more than the model's " +
                       std::to_string(model.num_experts) + " experts per layer",
                   "a count of experts per MoE layer"});
  if (sp.resident.empty()) return;
  if (!sp.resident_shared && static_cast<int64_t>(sp.resident.size()) != model.num_layers) {
    out.push_back({sp.resident_where,
                   "resident in [speculative] lists " + std::to_string(sp.resident.size()) +
                       " layers, the model has " + std::to_string(model.num_layers),
                   "one range string per layer (dense layers' entries are ignored), or one "
                   "string for every MoE layer"});
    return;
  }
  for (size_t i = 0; i < sp.resident.size(); ++i) {
    const bool moe = sp.resident_shared || model.layer_is_moe[i];
    std::vector<int64_t> bad;
    for (int64_t e : sp.resident[i])
      if (e >= model.num_experts) bad.push_back(e);
    const std::string layer = sp.resident_shared ? "" : " layer " + std::to_string(i) + ":";
    if (!bad.empty())
      out.push_back({sp.resident_where,
                     "resident in [speculative]" + layer + " " + subject("expert", bad) +
                         " outside the model, which has " + std::to_string(model.num_experts) +
                         " experts per MoE layer (" + count_range(model.num_experts) + ")",
                     "experts count from 0"});
    else if (moe && sp.resident[i].empty())
      out.push_back({sp.resident_where,
                     "resident in [speculative]" + layer + " an MoE layer with no resident expert",
                     "give every MoE layer at least one"});
  }
}

}  // namespace

void check_against_model(const GraphSpec& g, const ModelConfig& model, bool coverage,
                         std::vector<Diagnostic>& out) {
  check_speculative(g.speculative, model, out);
  for (const ShardSpec& s : g.shards) check_shard_ids(s, model, out);
  if (coverage) check_coverage(g, model, out);
}

}  // namespace moeflow::graph_detail

namespace moeflow {

std::vector<Diagnostic> validate_graph(const GraphSpec& g, const ModelConfig& model) {
  std::vector<Diagnostic> out;
  graph_detail::check_against_model(g, model, true, out);
  return out;
}

}  // namespace moeflow
