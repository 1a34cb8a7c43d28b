// `moeflow graph check FILE` and `moeflow graph dot FILE`: validate a deployment graph against its
// model, or draw it. Problems are printed like a compiler's, `file:line:col: error: ...`, all of
// them, so an editor can jump to each.
#include <cstdio>

#include "cli/commands.h"
#include "cli/help.h"
#include "core/error.h"
#include "graph/graph.h"
#include "model/model_config.h"

namespace moeflow::cli {
namespace {

constexpr const char* kUsage =
    "Usage: moeflow graph check FILE   validate a deployment graph against its model\n"
    "       moeflow graph dot FILE     print the graph as Graphviz (dot -Tsvg)\n"
    "\n"
    "FILE is a TOML deployment graph, e.g. configs/local.toml; see docs/graph.md.\n"
    "`check` exits 0 when the graph is usable, 1 with every problem listed when not.\n";

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

}  // namespace

int run_graph(const std::vector<std::string>& args) {
  if (args.empty() || wants_help(args)) {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string& action = args[0];
  if (action != "check" && action != "dot")
    throw Error("unknown graph command \"" + action + "\" (expected check or dot)");
  if (args.size() != 2)
    throw Error("graph " + action + " takes one FILE, got " + plural(args.size() - 1, "argument"));
  const std::string& file = args[1];
  GraphSpec g;
  try {
    g = load_graph(file);
  } catch (const GraphError& e) {
    print_diagnostics(e, file);
    return 1;
  }
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
