// TOML text -> GraphSpec, with the schema checks: unknown keys (with a did-you-mean), value
// types, required keys, the range syntax, ports, devices, hosts, names, timeouts and the metrics
// settings; the settings tables are read by settings_parser.cpp. The TOML library stays behind
// graph/toml_reader.h and graph_syntax_error.cpp.
#include <toml++/toml.h>

#include <algorithm>
#include <optional>
#include <sstream>

#include "graph/device_check.h"
#include "graph/did_you_mean.h"
#include "graph/expert_ranges.h"
#include "graph/graph_checks.h"
#include "graph/settings_parser.h"
#include "graph/toml_reader.h"

namespace moeflow::graph_detail {
namespace {

const std::vector<std::string> kTopLevelKeys = {"model",       "api",      "metrics",   "nodes",
                                                "shards",      "timeouts", "scheduler", "scaling",
                                                "speculative", "sampling"};
const std::vector<std::string> kModelKeys = {"path", "dtype", "router_device"};
const std::vector<std::string> kEndpointKeys = {"host", "port"};
const std::vector<std::string> kMetricsKeys = {"host",
                                               "port",
                                               "window_tokens",
                                               "per_expert",
                                               "collapse_effective_fraction",
                                               "collapse_dead_share"};
const std::vector<std::string> kNodeKeys = {"host", "control_port", "data_port", "router",
                                            "metrics_port"};
const std::vector<std::string> kShardKeys = {"node", "layers", "experts", "device"};
const std::vector<std::string> kTimeoutKeys = {"heartbeat_ms", "peer_down_ms", "request_ms"};
const std::vector<std::string> kDtypes = {"f32", "bf16", "auto"};

// A specialisation window shorter than this says nothing about a layer of dozens of experts.
constexpr int64_t kWindowTokensMin = 16;
constexpr int64_t kWindowTokensMax = int64_t{1} << 30;

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// Reads one parsed document into the outcome, reporting every problem it finds.
class Parser : public TomlReader {
 public:
  Parser(const std::filesystem::path& file, ParseOutcome& out) : TomlReader(file, out) {
    out_.spec.file = file;
  }

  void read(const toml::table& root) {
    check_keys(root, "", kTopLevelKeys);
    read_model(root);
    read_endpoint(root, "api", kEndpointKeys, out_.spec.api.host, out_.spec.api.port,
                  out_.spec.api.where, out_.spec.api.port_where);
    read_endpoint(root, "metrics", kMetricsKeys, out_.spec.metrics.host, out_.spec.metrics.port,
                  out_.spec.metrics.where, out_.spec.metrics.port_where);
    read_metrics_options(root);
    read_timeouts(root);
    read_settings(root, out_.spec.file, out_);
    read_nodes(root);
    read_shards(root);
  }

 private:
  void check_host(const std::string& host, const SourceLocation& where,
                  const std::string& context) {
    std::string problem, hint;
    if (host.empty()) {
      problem = "host in " + context + " is empty";
    } else if (host.find("://") != std::string::npos) {
      problem = "host " + in_quotes(host) + " in " + context + " has a URL scheme";
      hint = "write the bare address, e.g. host = \"10.0.0.5\"";
    } else if (std::any_of(host.begin(), host.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
      problem = "host " + in_quotes(host) + " in " + context + " contains spaces";
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      problem = "host " + in_quotes(host) + " in " + context + " has a port in it";
      hint = "write the address alone; ports have keys of their own";
    }
    if (!problem.empty()) error(where, problem, hint);
  }

  void read_model(const toml::table& root) {
    ModelSpec& m = out_.spec.model;
    const toml::table* t =
        get_table(root, "model", "write [model] with path = \"<checkpoint folder>\"");
    if (!t) {
      if (!root.get("model"))
        error({file_, 1, 1}, "the graph has no [model] table",
              "add [model] with path = \"<Hugging Face checkpoint folder>\"");
      return;
    }
    m.where = at(t->source());
    check_keys(*t, "[model]", kModelKeys);
    if (auto path = get_string(*t, "path", "[model]", &m.path_where)) {
      if (path->empty()) {
        error(m.path_where, "path in [model] is empty", "name the checkpoint folder");
      } else {
        m.path_text = *path;
        const std::filesystem::path p(*path);
        m.path = p.is_relative() ? (out_.spec.file.parent_path() / p).lexically_normal() : p;
      }
    } else if (!t->get("path")) {
      error(m.where, "[model] has no path",
            "add path = \"<checkpoint folder>\", relative to this file");
    }
    SourceLocation dtype_where;
    if (auto dtype = get_string(*t, "dtype", "[model]", &dtype_where)) {
      if (std::find(kDtypes.begin(), kDtypes.end(), *dtype) == kDtypes.end()) {
        const std::string guess = closest_match(*dtype, kDtypes);
        error(dtype_where,
              "dtype " + in_quotes(*dtype) + " in [model] is not one of f32, bf16, auto",
              guess.empty() ? "auto picks bf16 for bf16 checkpoints, else f32"
                            : "did you mean " + in_quotes(guess) + "?");
      } else {
        m.dtype = *dtype;
      }
    }
    if (auto device = get_string(*t, "router_device", "[model]", &m.router_device_where)) {
      if (!valid_device_name(*device))
        error(m.router_device_where,
              "router_device " + in_quotes(*device) + " in [model] is not \"cpu\" or \"cuda:N\"",
              "e.g. router_device = \"cuda:0\" to run the router stage on the first GPU");
      else
        m.router_device = *device;
    }
  }

  void read_endpoint(const toml::table& root, std::string_view name,
                     const std::vector<std::string>& keys, std::string& host, int& port,
                     SourceLocation& where, SourceLocation& port_where) {
    const std::string context = "[" + std::string(name) + "]";
    const toml::table* t = get_table(root, name, "write " + context + " with host and port");
    if (!t) return;
    where = port_where = at(t->source());
    check_keys(*t, context, keys);
    SourceLocation host_where;
    if (auto h = get_string(*t, "host", context, &host_where)) {
      check_host(*h, host_where, context);
      host = *h;
    }
    if (t->get("port")) {
      const int p = get_port(*t, "port", context, &port_where);
      if (p) port = p;
    }
  }

  // A number in (0, 1]; an integer (`1`) is accepted as well as a float. Reports and returns
  // nothing when it is absent, of another type or out of range.
  std::optional<double> get_fraction(const toml::table& t, std::string_view key,
                                     const std::string& context) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    std::optional<double> v;
    if (n->is_floating_point()) v = n->as_floating_point()->get();
    if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
    if (!v) {
      error(at(n->source()),
            std::string(key) + " in " + context + " must be a number, not " + type_name(n->type()),
            "a fraction such as " + std::string(key) + " = 0.25, without quotes");
      return std::nullopt;
    }
    if (!(*v > 0.0 && *v <= 1.0)) {  // also refuses nan
      std::ostringstream text;
      text << *v;
      error(at(n->source()),
            std::string(key) + " " + text.str() + " in " + context + " is outside (0, 1]",
            "a fraction of the layer's experts, e.g. 0.25");
      return std::nullopt;
    }
    return v;
  }

  // The specialisation statistics' settings in [metrics] (host and port are read_endpoint's).
  void read_metrics_options(const toml::table& root) {
    MetricsSpec& ms = out_.spec.metrics;
    const toml::node* n = root.get("metrics");
    const toml::table* t = n ? n->as_table() : nullptr;
    if (!t) return;  // absent, or reported by read_endpoint
    if (const toml::node* w = typed(*t, "window_tokens", "[metrics]", toml::node_type::integer)) {
      const int64_t v = w->as_integer()->get();
      if (v < kWindowTokensMin || v > kWindowTokensMax)
        error(at(w->source()),
              "window_tokens " + std::to_string(v) + " in [metrics] is outside " +
                  std::to_string(kWindowTokensMin) + "-" + std::to_string(kWindowTokensMax),
              "tokens of one layer per specialisation window; the default is 4096");
      else
        ms.window_tokens = v;
    }
    if (const toml::node* b = typed(*t, "per_expert", "[metrics]", toml::node_type::boolean))
      ms.per_expert = b->as_boolean()->get();
    if (auto f = get_fraction(*t, "collapse_effective_fraction", "[metrics]"))
      ms.collapse_effective_fraction = *f;
    if (auto f = get_fraction(*t, "collapse_dead_share", "[metrics]")) ms.collapse_dead_share = *f;
  }

  void read_timeouts(const toml::table& root) {
    TimeoutSpec& ts = out_.spec.timeouts;
    const toml::table* t = get_table(root, "timeouts", "write [timeouts] with heartbeat_ms = 500");
    if (!t) return;
    ts.where = at(t->source());
    check_keys(*t, "[timeouts]", kTimeoutKeys);
    // The location of each key that is set, for the cross-check below.
    const auto read = [&](const char* key, int& value) -> std::optional<SourceLocation> {
      const toml::node* n = typed(*t, key, "[timeouts]", toml::node_type::integer);
      if (!n) return std::nullopt;
      const int64_t v = n->as_integer()->get();
      if (v < 1 || v > kTimeoutMaxMs) {
        error(at(n->source()),
              std::string(key) + " " + std::to_string(v) + " in [timeouts] is outside 1-" +
                  std::to_string(kTimeoutMaxMs),
              "timeouts are in milliseconds");
        return std::nullopt;
      }
      value = static_cast<int>(v);
      return at(n->source());
    };
    const auto heartbeat_where = read("heartbeat_ms", ts.heartbeat_ms);
    const auto peer_down_where = read("peer_down_ms", ts.peer_down_ms);
    read("request_ms", ts.request_ms);
    // A peer is declared down only after missing several heartbeats, never between two.
    if (ts.peer_down_ms <= ts.heartbeat_ms)
      error(peer_down_where   ? *peer_down_where
            : heartbeat_where ? *heartbeat_where
                              : ts.where,
            "peer_down_ms (" + std::to_string(ts.peer_down_ms) +
                ") must be greater than heartbeat_ms (" + std::to_string(ts.heartbeat_ms) + ")",
            "a few heartbeats, e.g. peer_down_ms = 4 x heartbeat_ms");
  }

  // The children of [nodes] or [shards], each checked to be a table with a usable name.
  std::vector<std::pair<std::string, const toml::table*>> entries(const toml::table& root,
                                                                  std::string_view group,
                                                                  std::string_view what) {
    std::vector<std::pair<std::string, const toml::table*>> out;
    const std::string form = "[" + std::string(group) + ".NAME]";
    const toml::node* n = root.get(group);
    if (!n) return out;
    const toml::table* t = n->as_table();
    if (!t) {
      if (group == "nodes") out_.routers_complete = false;
      error(at(n->source()),
            std::string(group) + " must be tables " + form + ", not " + type_name(n->type()),
            n->is_array() ? "write " + form + " instead of [[" + std::string(group) + "]]"
                          : "write one " + form + " table per " + std::string(what));
      return out;
    }
    for (auto&& [key, value] : *t) {
      const std::string context = "[" + std::string(group) + "." + std::string(key.str()) + "]";
      // A node left out could be the router: the router count is unknown then.
      if (group == "nodes" && (!valid_name(key.str()) || !value.is_table()))
        out_.routers_complete = false;
      if (!valid_name(key.str())) {
        error(at(key.source()),
              std::string(what) + " name " + in_quotes(key.str()) +
                  " may use only letters, digits, '-' and '_'",
              "names appear in metrics labels and other nodes' logs");
        continue;
      }
      const toml::table* child = value.as_table();
      if (!child) {
        error(at(value.source()), context + " must be a table, not " + type_name(value.type()),
              "write " + context + " on a line of its own, then its keys below it");
        continue;
      }
      out.emplace_back(std::string(key.str()), child);
    }
    return out;
  }

  void read_nodes(const toml::table& root) {
    GraphSpec& g = out_.spec;
    for (auto& [name, t] : entries(root, "nodes", "node")) {
      const std::string context = "[nodes." + name + "]";
      check_keys(*t, context, kNodeKeys);
      NodeSpec node;
      node.name = name;
      node.where = node.control_port_where = node.data_port_where = at(t->source());
      SourceLocation host_where;
      if (auto host = get_string(*t, "host", context, &host_where)) {
        check_host(*host, host_where, context);
        node.host = *host;
      }
      if (t->get("control_port"))
        node.control_port = get_port(*t, "control_port", context, &node.control_port_where);
      if (t->get("data_port"))
        node.data_port = get_port(*t, "data_port", context, &node.data_port_where);
      if (const toml::node* r = typed(*t, "router", context, toml::node_type::boolean))
        node.router = r->as_boolean()->get();
      else if (t->get("router"))
        out_.routers_complete = false;
      if (t->get("metrics_port")) {
        node.metrics_port_where = node.where;
        node.metrics_port = get_port(*t, "metrics_port", context, &node.metrics_port_where);
        if (node.metrics_port && node.router) {
          error(node.metrics_port_where,
                "metrics_port in " + context +
                    " is not used: the router node serves /metrics on the [metrics] host and port",
                "remove metrics_port here and set port = " + std::to_string(node.metrics_port) +
                    " in [metrics]");
          node.metrics_port = 0;
        }
      }
      std::vector<std::string> missing;
      for (const char* key : {"host", "control_port", "data_port"})
        if (!t->get(key)) missing.push_back(key);
      if (!missing.empty())
        error(node.where, "node " + in_quotes(name) + " has no " + join(missing),
              "every [nodes.NAME] needs host, control_port and data_port");
      g.nodes.push_back(std::move(node));
    }
    if (g.nodes.empty()) {
      // The short form: one process on this machine runs everything.
      g.implicit_node = true;
      NodeSpec local;
      local.name = std::string(kImplicitNodeName);
      local.host = "127.0.0.1";
      local.router = true;
      local.where = local.control_port_where = local.data_port_where = g.model.where;
      g.nodes.push_back(std::move(local));
    }
  }

  // Parses a `layers` / `experts` value; false when it is absent or broken (broken is reported).
  bool get_ranges(const toml::table& t, std::string_view key, const std::string& context, bool& all,
                  std::vector<int64_t>& ids, SourceLocation& where) {
    const toml::node* n = typed(t, key, context, toml::node_type::string);
    if (!n) return false;
    where = at(n->source());
    const std::string& text = n->as_string()->get();
    const auto parsed = parse_ranges(text);
    if (const RangeError* e = std::get_if<RangeError>(&parsed)) {
      // Point at the bad item when the value is written plainly ("..." on one line, no escapes),
      // so that the column can be counted from the opening quote.
      SourceLocation item = where;
      const auto& r = n->source();
      if (r.begin.line == r.end.line && r.end.column - r.begin.column == text.size() + 2)
        item.column += 1 + static_cast<int>(e->offset);
      error(item, std::string(key) + " in " + context + ": " + e->message, e->hint);
      return false;
    }
    const RangeList& list = std::get<RangeList>(parsed);
    all = list.all;
    ids = list.ids;
    return true;
  }

  void read_shards(const toml::table& root) {
    GraphSpec& g = out_.spec;
    for (auto& [name, t] : entries(root, "shards", "shard")) {
      const std::string context = "[shards." + name + "]";
      check_keys(*t, context, kShardKeys);
      ShardSpec shard;
      shard.name = name;
      shard.where = shard.node_where = shard.layers_where = shard.experts_where = at(t->source());
      if (auto node = get_string(*t, "node", context, &shard.node_where)) {
        shard.node = *node;
      } else if (!t->get("node")) {
        if (g.implicit_node)
          shard.node = std::string(kImplicitNodeName);
        else
          error(shard.where, "shard " + in_quotes(name) + " has no node",
                "add node = \"<one of: " + node_names() + ">\"");
      }
      bool ok = true;
      if (t->get("layers"))
        ok &= get_ranges(*t, "layers", context, shard.all_layers, shard.layers, shard.layers_where);
      else
        shard.all_layers = true;  // a shard usually holds its experts in every layer
      if (t->get("experts")) {
        ok &= get_ranges(*t, "experts", context, shard.all_experts, shard.experts,
                         shard.experts_where);
      } else {
        ok = false;
        error(shard.where, "shard " + in_quotes(name) + " has no experts",
              "add experts = \"0-7\" (ids and ranges) or experts = \"all\"");
      }
      if (!ok) out_.shards_complete = false;
      SourceLocation device_where;
      if (auto device = get_string(*t, "device", context, &device_where)) {
        if (!valid_device_name(*device))
          error(device_where,
                "device " + in_quotes(*device) + " in " + context + " is not \"cpu\" or \"cuda:N\"",
                "e.g. device = \"cuda:0\" for the first GPU");
        else
          shard.device = *device;
      }
      g.shards.push_back(std::move(shard));
    }
    if (root.get("shards") && !root.get("shards")->is_table()) out_.shards_complete = false;
    if (g.shards.empty() && g.implicit_node && !root.get("shards")) {
      ShardSpec all;
      all.name = std::string(kImplicitNodeName);
      all.node = std::string(kImplicitNodeName);
      all.all_layers = all.all_experts = true;
      all.where = all.node_where = all.layers_where = all.experts_where = g.model.where;
      g.shards.push_back(std::move(all));
    }
  }

  std::string node_names() const {
    std::vector<std::string> names;
    for (const NodeSpec& n : out_.spec.nodes) names.push_back(n.name);
    return join(names);
  }
};

}  // namespace

ParseOutcome parse_graph_toml(const std::string& text, const std::filesystem::path& file) {
  ParseOutcome out;
  out.spec.file = file;
  toml::table root;
  try {
    root = toml::parse(std::string_view(text), std::string_view(file.string()));
  } catch (const toml::parse_error& e) {
    out.syntax_ok = false;
    out.shards_complete = false;
    const SourceLocation where{file.string(), static_cast<int>(e.source().begin.line),
                               static_cast<int>(e.source().begin.column)};
    out.diagnostics.push_back(syntax_diagnostic(std::string(e.description()), where, text));
    return out;
  }
  Parser(file, out).read(root);
  return out;
}

}  // namespace moeflow::graph_detail
