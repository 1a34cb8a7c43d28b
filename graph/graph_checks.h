#pragma once
// Internal to graph/: the stages behind parse_graph, load_graph and validate_graph. Each stage
// appends diagnostics instead of throwing, so that one run reports every problem.
#include <filesystem>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace moeflow::graph_detail {

struct ParseOutcome {
  GraphSpec spec;  // as much as could be read
  std::vector<Diagnostic> diagnostics;
  bool syntax_ok = true;         // false: the TOML itself did not parse; spec is empty
  bool routers_complete = true;  // false: some node's `router` could not be read, so
                                 // the router count is unknown
  bool shards_complete = true;   // false: some shard's layers/experts could not be read,
                                 // so a coverage check would report false gaps
};

// TOML -> GraphSpec with schema checks (graph_parser.cpp).
ParseOutcome parse_graph_toml(const std::string& text, const std::filesystem::path& file);

// The diagnostic for the TOML library's syntax error `description` at `where` in `text`; a table
// or key defined twice is named in the graph's terms with its first line (graph_syntax_error.cpp).
Diagnostic syntax_diagnostic(const std::string& description, const SourceLocation& where,
                             const std::string& text);

// Checks that need no model: one router (when `count_routers`), shard -> node references,
// host:port clashes (graph_topology.cpp).
void check_topology(const GraphSpec& g, bool count_routers, std::vector<Diagnostic>& out);

// Checks against the model; `coverage` adds the every-expert-has-a-shard check
// (graph_validator.cpp).
void check_against_model(const GraphSpec& g, const ModelConfig& model, bool coverage,
                         std::vector<Diagnostic>& out);

}  // namespace moeflow::graph_detail
