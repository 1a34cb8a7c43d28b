#include "graph/settings_parser.h"

#include <algorithm>
#include <sstream>

#include "graph/expert_ranges.h"

namespace moeflow::graph_detail {
namespace {

const std::vector<std::string> kSpeculativeKeys = {"enabled",   "draft_top_k",  "resident",
                                                   "gamma",     "adaptive",     "gamma_min",
                                                   "gamma_max", "draft_context"};
const std::vector<std::string> kScalingKeys = {"enabled",        "policy",       "hot_load",
                                               "cold_load",      "max_replicas", "memory_mb",
                                               "node_memory_mb", "window_ms",    "cooldown_ms"};
const std::vector<std::string> kSamplingKeys = {"temperature", "top_p", "top_k", "max_tokens"};
const std::vector<std::string> kSchedulerKeys = {"max_running", "max_waiting", "kv_budget_tokens",
                                                 "prefill_chunk"};

class SettingsReader : public TomlReader {
 public:
  using TomlReader::TomlReader;

  void read(const toml::table& root) {
    read_scheduler(root);
    read_scaling(root);
    read_speculative(root);
    read_sampling(root);
  }

 private:
  void read_scheduler(const toml::table& root) {
    SchedulerSpec& ss = out_.spec.scheduler;
    const toml::table* t = get_table(root, "scheduler", "write [scheduler] with max_running = 64");
    if (!t) return;
    ss.where = at(t->source());
    check_keys(*t, "[scheduler]", kSchedulerKeys);
    const auto read = [&](const char* key, int64_t& value) {
      if (auto v = get_int_in(*t, key, "[scheduler]", 1, int64_t{1} << 30,
                              "a count of sequences, requests or tokens", "must be positive"))
        value = *v;
    };
    read("max_running", ss.max_running);
    read("max_waiting", ss.max_waiting);
    read("kv_budget_tokens", ss.kv_budget_tokens);
    read("prefill_chunk", ss.prefill_chunk);
  }

  void read_scaling(const toml::table& root) {
    ScalingSpec& sc = out_.spec.scaling;
    const toml::table* t = get_table(root, "scaling", "write [scaling] with enabled = true");
    if (!t) return;
    sc.where = at(t->source());
    check_keys(*t, "[scaling]", kScalingKeys);
    if (const toml::node* b = typed(*t, "enabled", "[scaling]", toml::node_type::boolean))
      sc.enabled = b->as_boolean()->get();
    if (const toml::node* p = typed(*t, "policy", "[scaling]", toml::node_type::string)) {
      const std::string v = p->as_string()->get();
      if (v != "threshold" && v != "eplb")
        error(at(p->source()), "policy " + in_quotes(v) + " in [scaling] is not known",
              "\"threshold\" (hot_load / cold_load) or \"eplb\" (spread the memory budget)");
      else
        sc.policy = v;
    }
    // Loads are relative to the layer's mean: strictly between the bounds.
    const auto number = [&](const char* key, double low, double high, double& value) {
      std::ostringstream range;
      range << "must be a number in (" << low << ", " << high << ")";
      if (auto v = get_number_if(
              *t, key, "[scaling]", [&](double x) { return x > low && x < high; }, range.str(),
              "a load relative to the layer's mean load per expert, e.g. 1.5"))
        value = *v;
    };
    number("hot_load", 1.0, 1000.0, sc.hot_load);
    number("cold_load", 0.0, 1.0, sc.cold_load);
    const auto count = [&](const char* key, int64_t low, int64_t high, int64_t& value) {
      if (auto v = get_int_in(*t, key, "[scaling]", low, high,
                              "max_replicas counts replicas per expert; memory_mb is in MiB; *_ms "
                              "in ms"))
        value = *v;
    };
    count("max_replicas", 1, 1024, sc.max_replicas);
    count("memory_mb", 0, int64_t{1} << 30, sc.memory_mb);
    count("node_memory_mb", 0, int64_t{1} << 30, sc.node_memory_mb);
    count("window_ms", 10, kTimeoutMaxMs, sc.window_ms);
    count("cooldown_ms", 0, kTimeoutMaxMs, sc.cooldown_ms);
  }

  void read_sampling(const toml::table& root) {
    SamplingSpec& sa = out_.spec.sampling;
    const toml::table* t = get_table(root, "sampling", "write [sampling] with temperature = 0.7");
    if (!t) return;
    sa.where = at(t->source());
    check_keys(*t, "[sampling]", kSamplingKeys);
    // As the OpenAI API bounds them.
    const std::string hint = "the default for requests that do not give it, as in the OpenAI API";
    if (auto v = get_number_if(
            *t, "temperature", "[sampling]", [](double x) { return x >= 0 && x <= 2; },
            "must be a number from 0 to 2", hint))
      sa.temperature = *v;
    if (auto v = get_number_if(
            *t, "top_p", "[sampling]", [](double x) { return x > 0 && x <= 1; },
            "must be a number from 0 to 1, above 0", hint))
      sa.top_p = *v;
    const std::string count_hint =
        "0 turns it off (top_k) or keeps the endpoint's own default (max_tokens)";
    if (auto v =
            get_int_in(*t, "top_k", "[sampling]", 0, int64_t{1} << 30, count_hint, "must be >= 0"))
      sa.top_k = *v;
    if (auto v = get_int_in(*t, "max_tokens", "[sampling]", 0, int64_t{1} << 30, count_hint,
                            "must be >= 0"))
      sa.max_tokens = *v;
  }

  void read_speculative(const toml::table& root) {
    SpeculativeSpec& sp = out_.spec.speculative;
    const std::string context = "[speculative]";
    const toml::table* t =
        get_table(root, "speculative", "write [speculative] with enabled = true");
    if (!t) return;
    sp.where = sp.draft_top_k_where = sp.resident_where = at(t->source());
    check_keys(*t, context, kSpeculativeKeys);
    if (const toml::node* b = typed(*t, "enabled", context, toml::node_type::boolean))
      sp.enabled = b->as_boolean()->get();
    if (const toml::node* b = typed(*t, "adaptive", context, toml::node_type::boolean))
      sp.adaptive = b->as_boolean()->get();
    SourceLocation gamma_at = sp.where, low_at = sp.where, high_at = sp.where;
    if (auto v = get_int_in(*t, "draft_top_k", context, 0, kRangeIdMax,
                            "routed experts per draft token; 0 keeps the model's top-k", "",
                            &sp.draft_top_k_where))
      sp.draft_top_k = *v;
    const char* gamma_hint = "draft tokens per round, 1-8";
    if (auto v = get_int_in(*t, "gamma", context, 1, 8, gamma_hint, "", &gamma_at)) sp.gamma = *v;
    if (auto v = get_int_in(*t, "gamma_min", context, 1, 8, gamma_hint, "", &low_at))
      sp.gamma_min = *v;
    if (auto v = get_int_in(*t, "gamma_max", context, 1, 8, gamma_hint, "", &high_at))
      sp.gamma_max = *v;
    if (auto v = get_int_in(*t, "draft_context", context, 0, int64_t{1} << 20,
                            "tokens a lagging drafter is rebuilt from; 0: always catch up "
                            "completely"))
      sp.draft_context = *v;
    if (sp.gamma_min > sp.gamma_max)
      error(t->contains("gamma_max") ? high_at : low_at,
            "gamma_min (" + std::to_string(sp.gamma_min) + ") in " + context +
                " is above gamma_max (" + std::to_string(sp.gamma_max) + ")",
            "the adaptive controller picks γ in [gamma_min, gamma_max]");
    else if (sp.gamma < sp.gamma_min || sp.gamma > sp.gamma_max)
      error(gamma_at,
            "gamma (" + std::to_string(sp.gamma) + ") in " + context + " is outside gamma_min-" +
                "gamma_max (" + std::to_string(sp.gamma_min) + "-" + std::to_string(sp.gamma_max) +
                ")",
            "gamma is the fixed γ, or where the adaptive controller starts");
    read_resident(*t, context, sp);
  }

  // resident = 4 (chosen from observed routing), "0-3" (every MoE layer) or ["0-3", "4-7", ...]
  // (one range string per model layer).
  void read_resident(const toml::table& t, const std::string& context, SpeculativeSpec& sp) {
    const toml::node* n = t.get("resident");
    if (!n) return;
    sp.resident_where = at(n->source());
    const std::string hint =
        "an expert count per layer (chosen from observed routing), a range such as \"0-3\" for "
        "every MoE layer, or one range string per layer";
    if (const auto* i = n->as_integer()) {
      if (i->get() < 1 || i->get() > kRangeIdMax)
        error(sp.resident_where,
              "resident " + std::to_string(i->get()) + " in " + context + " must be positive",
              hint);
      else
        sp.resident_count = i->get();
      return;
    }
    std::vector<const toml::node*> items;
    if (n->is_string()) {
      sp.resident_shared = true;
      items.push_back(n);
    } else if (const toml::array* a = n->as_array()) {
      for (const toml::node& item : *a) items.push_back(&item);
    } else {
      error(sp.resident_where,
            "resident in " + context +
                " must be an integer, a string or an array of strings, "
                "not " +
                type_name(n->type()),
            hint);
      return;
    }
    for (const toml::node* item : items) {
      if (!item->is_string()) {
        error(at(item->source()),
              "resident in " + context + ": each layer's entry must be a string, not " +
                  type_name(item->type()),
              hint);
        sp.resident.clear();
        return;
      }
      const std::string& text = item->as_string()->get();
      if (text.empty() && !sp.resident_shared) {  // a dense layer's entry (or a mistake)
        sp.resident.emplace_back();
        continue;
      }
      const auto parsed = parse_ranges(text);
      if (const RangeError* e = std::get_if<RangeError>(&parsed)) {
        error(at(item->source()), "resident in " + context + ": " + e->message, e->hint);
        sp.resident.clear();
        return;
      }
      const RangeList& list = std::get<RangeList>(parsed);
      if (list.all) {
        error(at(item->source()),
              "resident in " + context + ": \"all\" is every expert, no resident set",
              "leave resident out to draft over every expert");
        sp.resident.clear();
        return;
      }
      sp.resident.push_back(list.ids);
    }
  }
};

}  // namespace

void read_settings(const toml::table& root, const std::filesystem::path& file, ParseOutcome& out) {
  SettingsReader(file, out).read(root);
}

}  // namespace moeflow::graph_detail
