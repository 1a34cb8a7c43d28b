#pragma once
// The deployment graph: which nodes (processes) exist and where they listen, which one runs the
// router, and which expert shard holds which (layer, expert). It is read once from a TOML file
// (docs/graph.md) into these plain structs; nothing else in moeflow sees TOML.
//
// Shards and nodes are kept in name order (not file order), so that every peer numbers them the
// same way whatever the layout of its copy of the file.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "graph/diagnostic.h"

namespace moeflow {

struct ModelConfig;

// With no [nodes.*] the graph has this one node (on 127.0.0.1, running the router), and with no
// [shards.*] either, one shard of this name on it holding every expert.
inline constexpr std::string_view kImplicitNodeName = "local";

struct ModelSpec {
  std::filesystem::path path;  // resolved against the graph file's folder
  std::string path_text;       // as written; graph_hash uses this so peers agree wherever it lives
  std::string dtype = "auto";  // f32 | bf16 | auto
  // Where the router node runs the router stage (attention, norms, gates, LM head) and keeps the
  // KV cache: "cpu" or "cuda:N".
  std::string router_device = "cpu";
  SourceLocation where;  // the [model] table
  SourceLocation router_device_where;
  SourceLocation path_where;  // its `path` value
};

struct NodeSpec {
  std::string name;
  std::string host;                     // the address other nodes connect to
  int control_port = 0, data_port = 0;  // 0 only for the implicit node, which listens on neither
  bool router = false;                  // runs gateway, scheduler and router
  // An expert node's /metrics, bound on `host`; 0 = none. The router node uses [metrics].
  int metrics_port = 0;
  SourceLocation where, control_port_where, data_port_where, metrics_port_where;
};

struct ShardSpec {
  std::string name;
  std::string node;
  std::vector<int64_t> layers;  // sorted; empty when all_layers
  bool all_layers = false;
  std::vector<int64_t> experts;  // sorted; empty when all_experts
  bool all_experts = false;
  std::string device = "cpu";  // "cpu" or "cuda:N"
  SourceLocation where, node_where, layers_where, experts_where;

  // Whether the shard lists this expert of this layer (whether the layer is MoE is the model's
  // business: see make_placement).
  bool owns(int64_t layer, int64_t expert) const;
};

struct ApiSpec {
  std::string host = "127.0.0.1";  // bind address of the HTTP API, on the router node
  int port = 8000;
  SourceLocation where, port_where;
};

struct MetricsSpec {
  std::string host = "127.0.0.1";  // bind address of the Prometheus endpoint, on the router node
  int port = 9100;
  int64_t window_tokens = 4096;  // tokens of one layer per specialisation window; >= 16
  bool per_expert = true;        // false: one series per layer, expert="all"
  // Collapse warning: effective experts < fraction * N, or dead experts / N > share; both (0, 1].
  double collapse_effective_fraction = 0.25;
  double collapse_dead_share = 0.5;
  SourceLocation where, port_where;
};

struct TimeoutSpec {
  int heartbeat_ms = 500;   // how often peers ping each other
  int peer_down_ms = 2000;  // silence after which a peer counts as down
  int request_ms = 10000;   // a request that takes longer fails
  SourceLocation where;
};

// Continuous batching limits of the router node's scheduler.
struct SchedulerSpec {
  int64_t max_running = 64;          // sequences in one step
  int64_t max_waiting = 256;         // queued requests; more are refused (HTTP 429)
  int64_t kv_budget_tokens = 65536;  // prompt + max_tokens summed over running sequences
  int64_t prefill_chunk = 512;       // prompt tokens fed per step, over all sequences
  SourceLocation where;
};

// The autoscaler of the router node ([scaling], docs/graph.md): replicas of hot experts, loaded
// into the router node's process, that come and go with the load.
struct ScalingSpec {
  bool enabled = false;
  std::string policy = "threshold";  // "threshold" (hot/cold loads) or "eplb" (budget spread)
  double hot_load = 1.5;       // replicate when load per replica > hot_load x the layer's mean load
  double cold_load = 0.5;      // retire an added replica when the load per replica would stay below
  int64_t max_replicas = 4;    // per expert, the graph's holders included
  int64_t memory_mb = 1024;    // weights of added replicas, in all
  int64_t node_memory_mb = 0;  // weights of added replicas on any one node; 0: no cap of its own
  int64_t window_ms = 5000;    // load measured over this long between decisions
  int64_t cooldown_ms = 30000;  // no retirement of a replica younger than this
  SourceLocation where;
};

// Defaults for API requests that leave a sampling parameter out ([sampling], docs/graph.md). A
// request's own value always wins. Changes apply live to requests that arrive afterwards.
struct SamplingSpec {
  double temperature = 1.0;  // 0: greedy
  double top_p = 1.0;
  int64_t top_k = 0;       // 0: off
  int64_t max_tokens = 0;  // 0: the endpoint's own default (16 for completions, the rest of the
                           // context for chat)
  SourceLocation where;
};

// Self-speculative decoding on the router node ([speculative], docs/speculative.md): the model with
// a smaller expert budget drafts, the full model verifies.
struct SpeculativeSpec {
  bool enabled = false;
  int64_t draft_top_k = 1;  // routed experts per token of the drafter; 0: the model's own
  // The drafter's resident experts: one list per model layer, or (resident_shared) one list for
  // every MoE layer; empty: every expert may be chosen.
  std::vector<std::vector<int64_t>> resident;
  bool resident_shared = false;
  int64_t resident_count = 0;  // > 0: this many per MoE layer, chosen from observed draft routing
  int64_t gamma = 4;           // draft tokens per round (fixed, or the adaptive start)
  bool adaptive = true;        // γ and on/off from measured times
  int64_t gamma_min = 1, gamma_max = 8;
  int64_t draft_context = 32;  // a drafter further behind is rebuilt from this many tokens
  SourceLocation where, draft_top_k_where, resident_where;
};

struct GraphSpec {
  std::filesystem::path file;
  ModelSpec model;
  std::vector<NodeSpec> nodes;    // name order
  std::vector<ShardSpec> shards;  // name order; Placement refers to shards by index here
  ApiSpec api;
  MetricsSpec metrics;
  TimeoutSpec timeouts;
  SchedulerSpec scheduler;
  ScalingSpec scaling;
  SpeculativeSpec speculative;
  SamplingSpec sampling;
  bool implicit_node = false;  // no [nodes.*]: everything runs in one process, node "local"

  const NodeSpec* find_node(std::string_view name) const;    // nullptr when there is none
  const ShardSpec* find_shard(std::string_view name) const;  // nullptr when there is none
  const NodeSpec& router_node() const;  // throws moeflow::Error on a graph without one
  std::vector<const ShardSpec*> shards_on(std::string_view node) const;
};

// Syntax and schema: TOML errors, unknown keys, types, required keys, ranges, ports, devices,
// names, one router, shards on known nodes, no host:port used twice. Throws GraphError with every
// problem found. `file` names the text in locations and anchors the relative model path.
GraphSpec parse_graph(const std::string& toml_text, const std::filesystem::path& file);

// Reads `file`, parses it, reads the model's config.json and validates the graph against it.
// Throws GraphError with every problem found.
GraphSpec load_graph(const std::filesystem::path& file);

// Checks that need the model: layer and expert ids exist, listed layers are MoE layers (a dense
// layer listed is an error), and every expert of every MoE layer has a shard. Empty when fine.
std::vector<Diagnostic> validate_graph(const GraphSpec& g, const ModelConfig& model);

// A Graphviz digraph: one cluster per node, the router and shards inside, edges router -> shard
// labelled with the shard's layers and experts.
std::string graph_to_dot(const GraphSpec& g);

// A hash of the graph's meaning (not of its whitespace, comments, key order or number
// formatting), for peers to check that they run the same graph. FNV-1a 64 of a canonical text.
uint64_t graph_hash(const GraphSpec& g);

// Which shards hold each (layer, expert); the router dispatches by it.
struct Placement {
  // owners[layer][expert]: indices into GraphSpec::shards, ascending; owners[layer] is empty for a
  // dense layer.
  std::vector<std::vector<std::vector<int>>> owners;

  const std::vector<int>& owners_of(int64_t layer, int64_t expert) const {
    return owners.at(static_cast<size_t>(layer)).at(static_cast<size_t>(expert));
  }
};

// Whether two shards hold the same experts of every layer of `model`.
bool same_experts(const ShardSpec& a, const ShardSpec& b, const ModelConfig& model);

// Same experts on the same device: a reloaded graph can keep such a shard's loaded weights.
bool same_shard(const ShardSpec& a, const ShardSpec& b, const ModelConfig& model);

// Ids beyond the model in a shard are ignored here (validate_graph reports them).
Placement make_placement(const GraphSpec& g, const ModelConfig& model);

}  // namespace moeflow
