#pragma once
// Helpers for the graph tests: TOML text to a file, and compact checks on diagnostics.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "tests/support/golden.h"

namespace moeflow::test_support {

// Writes `text` to `dir/name` and returns the path.
inline std::filesystem::path write_toml(const std::filesystem::path& dir, const std::string& name,
                                        const std::string& text) {
  const std::filesystem::path p = dir / name;
  std::ofstream(p, std::ios::binary) << text;
  return p;
}

// A [model] table pointing at a golden checkpoint by absolute path (2 lines).
inline std::string model_table(const std::string& family = "mixtral") {
  return "[model]\npath = \"" + golden_dir(family).string() + "\"\n";
}

// The diagnostics parse_graph reports for `text` (file "g.toml"); empty when it parses.
inline std::vector<Diagnostic> parse_errors(const std::string& text) {
  try {
    parse_graph(text, "g.toml");
  } catch (const GraphError& e) {
    return e.diagnostics();
  }
  return {};
}

inline std::vector<Diagnostic> load_errors(const std::filesystem::path& file) {
  try {
    load_graph(file);
  } catch (const GraphError& e) {
    return e.diagnostics();
  }
  return {};
}

inline std::string describe(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const auto& d : ds) out += "\n  " + format_diagnostic(d);
  return out.empty() ? " (no diagnostics)" : out;
}

// Passes when some diagnostic is at line:col and its message contains `part`.
inline ::testing::AssertionResult has_error(const std::vector<Diagnostic>& ds, int line, int col,
                                            const std::string& part) {
  for (const auto& d : ds)
    if (d.where.line == line && d.where.column == col && d.message.find(part) != std::string::npos)
      return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no error at " << line << ":" << col << " containing \""
                                       << part << "\" among:" << describe(ds);
}

// Passes when some diagnostic's hint contains `part`.
inline ::testing::AssertionResult has_hint(const std::vector<Diagnostic>& ds,
                                           const std::string& part) {
  for (const auto& d : ds)
    if (d.hint.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "no hint containing \"" << part << "\" among:" << describe(ds);
}

}  // namespace moeflow::test_support
