// parse_graph and load_graph: run the stages in order and throw one GraphError carrying every
// problem they found.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <tuple>

#include "graph/graph_checks.h"
#include "model/model_config.h"

namespace moeflow {
namespace {

// Problems in file order, as a compiler lists them.
[[noreturn]] void fail(std::vector<Diagnostic> diagnostics) {
  std::stable_sort(
      diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
      });
  throw GraphError(std::move(diagnostics));
}

}  // namespace

GraphSpec parse_graph(const std::string& toml_text, const std::filesystem::path& file) {
  graph_detail::ParseOutcome o = graph_detail::parse_graph_toml(toml_text, file);
  if (o.syntax_ok) graph_detail::check_topology(o.spec, o.routers_complete, o.diagnostics);
  if (!o.diagnostics.empty()) fail(std::move(o.diagnostics));
  return std::move(o.spec);
}

GraphSpec load_graph(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    Diagnostic d;
    d.where.file = file.string();
    d.message = "cannot read the graph file";
    d.hint = "check the path";
    throw GraphError({d});
  }

  graph_detail::ParseOutcome o = graph_detail::parse_graph_toml(text.str(), file);
  if (!o.syntax_ok) throw GraphError(std::move(o.diagnostics));
  graph_detail::check_topology(o.spec, o.routers_complete, o.diagnostics);
  // The model checks run even when the schema had problems, so one run shows everything; only
  // the coverage check waits for every shard's ranges to be readable.
  if (!o.spec.model.path_text.empty()) {
    try {
      const ModelConfig model = load_model_config(o.spec.model.path);
      graph_detail::check_against_model(o.spec, model, o.shards_complete, o.diagnostics);
    } catch (const Error& e) {
      o.diagnostics.push_back({o.spec.model.path_where,
                               "cannot read the model: " + std::string(e.what()),
                               "path is relative to the graph file's folder"});
    }
  }
  if (!o.diagnostics.empty()) fail(std::move(o.diagnostics));
  return std::move(o.spec);
}

}  // namespace moeflow
