#pragma once
// The settings tables of a graph: [scheduler], [scaling], [speculative] and [sampling], read into
// the outcome's GraphSpec with their problems reported (graph_parser.cpp reads the rest).
#include "graph/toml_reader.h"

namespace moeflow::graph_detail {

void read_settings(const toml::table& root, const std::filesystem::path& file, ParseOutcome& out);

}  // namespace moeflow::graph_detail
