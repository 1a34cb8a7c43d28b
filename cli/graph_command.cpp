// `moeflow graph check|dot|targets FILE` and `moeflow graph plan OLD NEW`: validate a deployment
// graph against its model, draw it, list its metrics endpoints for Prometheus, or say what an edit
// changes and whether a running deployment applies it live. Problems are printed like a compiler's,
// `file:line:col: error: ...`, all of them, so an editor can jump to each.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/help.h"
#include "core/error.h"
#include "graph/graph.h"
#include "graph/graph_plan.h"
#include "graph/prometheus_targets.h"
#include "model/model_config.h"

namespace moeflow::cli {
namespace {

constexpr const char* kUsage =
    "Usage: moeflow graph check FILE     validate a deployment graph against its model\n"
    "       moeflow graph dot FILE       print the graph as Graphviz (dot -Tsvg)\n"
    "       moeflow graph targets FILE   print its metrics endpoints as Prometheus file_sd JSON\n"
    "       moeflow graph plan OLD NEW   what changes from OLD to NEW, and whether a running\n"
    "                                    deployment applies it live (SIGHUP or saving the file)\n"
    "\n"
    "FILE is a TOML deployment graph, e.g. configs/local.toml; see docs/graph.md.\n"
    "`check` exits 0 when the graph is usable, 1 with every problem listed when not.\n"
    "`targets` lists the router node ([metrics] port) and every node with a metrics_port,\n"
    "labelled node, role (router|expert) and graph (FILE's stem); it does not read the model.\n"
    "`plan` exits 0 when NEW can be applied live, 3 when it needs a restart, 1 when either\n"
    "graph is invalid. See docs/deployment.md and docs/graph.md (Live changes).\n";

std::string plural(size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

void print_diagnostics(const GraphError& e, const std::string& file) {
  for (const Diagnostic& d : e.diagnostics()) {
    std::fprintf(stderr, "%s: error: %s\n", format_location(d.where).c_str(), d.message.c_str());
    if (!d.hint.empty()) std::fprintf(stderr, "  hint: %s\n", d.hint.c_str());
  }
  std::fprintf(stderr, "%s: %s\n", file.c_str(), plural(e.diagnostics().size(), "error").c_str());
}

// The graph without the model checks: Prometheus' host need not hold the checkpoint.
GraphSpec parse_graph_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) throw Error("cannot read the graph file " + file);
  return parse_graph(text.str(), file);
}

int print_targets(const GraphSpec& g, const std::string& file) {
  for (const NodeSpec& n : g.nodes)
    if (!n.router && !n.metrics_port)
      std::fprintf(stderr, "%s: node \"%s\" has no metrics_port; it is not listed\n", file.c_str(),
                   n.name.c_str());
  const std::string name = std::filesystem::path(file).stem().string();
  std::fputs(prometheus_targets_json(g, name).c_str(), stdout);
  return 0;
}

int run_plan(const std::vector<std::string>& args) {
  if (args.size() != 3)
    throw Error("graph plan takes OLD and NEW, got " + plural(args.size() - 1, "argument"));
  GraphSpec before, after;
  for (size_t i = 1; i <= 2; ++i) {
    try {
      (i == 1 ? before : after) = load_graph(args[i]);
    } catch (const GraphError& e) {
      print_diagnostics(e, args[i]);
      return 1;
    }
  }
  const GraphPlan plan = plan_graph_change(before, after, load_model_config(after.model.path));
  std::fputs(format_plan(plan).c_str(), stdout);
  return plan.live() ? 0 : 3;
}

}  // namespace

int run_graph(const std::vector<std::string>& args) {
  if (args.empty() || wants_help(args)) {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string& action = args[0];
  if (action == "plan") return run_plan(args);
  if (action != "check" && action != "dot" && action != "targets")
    throw Error("unknown graph command \"" + action + "\" (expected check, dot, targets or plan)");
  if (args.size() != 2)
    throw Error("graph " + action + " takes one FILE, got " + plural(args.size() - 1, "argument"));
  const std::string& file = args[1];
  GraphSpec g;
  try {
    g = action == "targets" ? parse_graph_file(file) : load_graph(file);
  } catch (const GraphError& e) {
    print_diagnostics(e, file);
    return 1;
  }
  if (action == "targets") return print_targets(g, file);
  if (action == "dot") {
    std::fputs(graph_to_dot(g).c_str(), stdout);
    return 0;
  }
  const ModelConfig model = load_model_config(g.model.path);
  std::printf("%s: ok (%s, %s, %s x %s covered)\n", file.c_str(),
              plural(g.nodes.size(), "node").c_str(), plural(g.shards.size(), "shard").c_str(),
              plural(model.moe_layer_count(), "layer").c_str(),
              plural(model.num_experts, "expert").c_str());
  return 0;
}

}  // namespace moeflow::cli
