// `moeflow serve --graph FILE --node NAME`: run one node of a deployment graph until SIGINT or
// SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdio>

#include "actors/expert_node.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "graph/graph.h"

namespace moeflow::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"graph", "FILE", "deployment graph (TOML; see docs/graph.md)", ""},
    {"node", "NAME", "which node of the graph this process is", ""},
};

std::atomic<bool> g_stop{false};

extern "C" void request_stop(int) {
  g_stop = true;
}

}  // namespace

int run_serve(const std::vector<std::string>& argv) {
  if (print_help_if_asked(argv, "moeflow serve --graph FILE --node NAME",
                          "Runs one expert node of a deployment graph: loads its shards, accepts "
                          "the router's handshake and expert requests, until SIGINT/SIGTERM.",
                          kOptions))
    return 0;
  const Args args(argv, kOptions);
  const GraphSpec graph = load_graph(args.require("graph"));
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  ExpertNodeOptions options;
  options.node = args.require("node");
  options.stop = &g_stop;
  run_expert_node(graph, options);
  return 0;
}

}  // namespace moeflow::cli
