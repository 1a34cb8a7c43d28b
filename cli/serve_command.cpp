// `moeflow serve --graph FILE [--node NAME]`: run one node of a deployment graph until SIGINT or
// SIGTERM. The router node (the default) serves the OpenAI-compatible HTTP API; an expert node
// serves its shards to the router.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/autoscaler.h"
#include "actors/expert_node.h"
#include "actors/graph_reloader.h"
#include "actors/router_node.h"
#include "api/http_server.h"
#include "api/metrics_server.h"
#include "api/tokenizer_codec.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "core/error.h"
#include "graph/graph.h"

namespace moeflow::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"graph", "FILE", "deployment graph (TOML; see docs/graph.md)", ""},
    {"node", "NAME", "which node of the graph this process is", "the router node"},
    {"model-name", "NAME", "the model id clients ask for", "the model folder's name"},
    {"api-key", "KEY", "require Authorization: Bearer KEY (or set MOEFLOW_API_KEY)", ""},
    {"connect-timeout", "MS", "router node: how long to wait for the expert nodes at start",
     "60000"},
    {"reload-timeout", "MS",
     "router node: how long a graph reload waits for the expert nodes to load it", "30000"},
};

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void request_stop(int) {
  g_stop = true;
}

extern "C" void request_reload(int) {
  g_reload = true;
}

void log(const std::string& line) {
  std::fprintf(stderr, "moeflow serve: %s\n", line.c_str());
  std::fflush(stderr);
}

int serve_router_node(const GraphSpec& graph, const Args& args) {
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  log("loading " + graph.model.path.string() + " and connecting to the expert nodes...");
  auto node = start_router_node(system, graph,
                                std::chrono::milliseconds(args.get_int("connect-timeout", 60000)));
  std::string local;
  for (const ShardSpec& s : graph.shards)
    if (s.node == graph.router_node().name)
      local += (local.empty() ? "" : ", ") + s.name + " on " + s.device;
  log("router stage on " + graph.model.router_device +
      (local.empty() ? "" : "; shards in this process: " + local));
  const auto codec = api::make_tokenizer_codec(graph.model.path);
  api::HttpServerOptions options;
  options.host = graph.api.host;
  options.port = graph.api.port;
  options.model_name = args.get("model-name", graph.model.path.filename().string());
  const char* env_key = std::getenv("MOEFLOW_API_KEY");
  options.api_key = args.get("api-key", env_key ? env_key : "");
  options.context_length = node->pipeline.config.max_position_embeddings;
  options.registry = node->registry.get();
  metrics::RoutingRecorder* routing = node->routing.get();
  options.routing_json = [routing] { return routing->routing_json(); };
  const auto sampling = std::make_shared<api::SamplingDefaults>(graph.sampling);
  options.sampling = sampling;
  api::MetricsServer metrics_server(*node->registry, graph.metrics.host, graph.metrics.port,
                                    options.routing_json);
  metrics_server.start();
  log("metrics on http://" + graph.metrics.host + ":" + std::to_string(metrics_server.port()) +
      "/metrics and /routing");
  Bridge* bridge = node->bridge.get();
  api::HttpServer server(system, node->pipeline.scheduler, *codec, options,
                         [bridge] { return bridge ? bridge->down_reasons() : std::string(); });
  server.start();
  log("serving model \"" + options.model_name + "\" on http://" + options.host + ":" +
      std::to_string(server.port()) + " (OpenAI API: /v1/completions, /v1/chat/completions)" +
      (options.api_key.empty() ? "" : ", API key required"));
  RouterGraphReloader reloader(*node, &g_reload,
                               std::chrono::milliseconds(args.get_int("reload-timeout", 30000)),
                               log, [sampling](const GraphSpec& g) { sampling->set(g.sampling); });
  Autoscaler autoscaler(*node, log);
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    reloader.poll();
    try {
      autoscaler.poll();
    } catch (const Error& e) {
      log(std::string("autoscaler: ") + e.what());
    }
  }
  log("stopping");
  server.stop();
  return 0;
}

}  // namespace

int run_serve(const std::vector<std::string>& argv) {
  if (print_help_if_asked(argv, "moeflow serve --graph FILE [--node NAME]",
                          "Runs one node of a deployment graph until SIGINT/SIGTERM: the router "
                          "node serves the OpenAI-compatible HTTP API (the graph's [api] host and "
                          "port), an expert node serves its shards to the router. Saving the graph "
                          "file (or SIGHUP) applies the edit live where it can (see `moeflow graph "
                          "plan`); every node reads the file again.",
                          kOptions))
    return 0;
  const Args args(argv, kOptions);
  const GraphSpec graph = load_graph(args.require("graph"));
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  std::signal(SIGHUP, request_reload);
  const std::string node = args.get("node", graph.router_node().name);
  const NodeSpec* spec = graph.find_node(node);
  if (!spec) throw Error("node " + node + " is not in " + graph.file.string());
  if (spec->router) return serve_router_node(graph, args);
  ExpertNodeOptions options;
  options.node = node;
  options.stop = &g_stop;
  options.reload = &g_reload;
  run_expert_node(graph, options);
  return 0;
}

}  // namespace moeflow::cli
