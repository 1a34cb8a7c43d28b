#pragma once
// Where something was written in a graph file, and what is wrong with it. Every refusal of a graph
// names `file:line:col`, so an operator can jump straight to the line from a terminal or editor.
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace moeflow {

struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is the file as a whole
  int column = 0;  // 1-based
};

// "file:line:col", or just "file" when there is no line.
std::string format_location(const SourceLocation& where);

struct Diagnostic {
  SourceLocation where;
  std::string message;
  std::string hint;  // what to do about it; may be empty
};

// "name" -> "\"name\"": how messages show names and values.
inline std::string in_quotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// "file:line:col: error: message (hint: ...)" on one line.
std::string format_diagnostic(const Diagnostic& d);

// A graph that cannot be used. Carries every problem found, not just the first; what() is all of
// them, one per line.
class GraphError : public Error {
 public:
  explicit GraphError(std::vector<Diagnostic> diagnostics);
  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

 private:
  std::vector<Diagnostic> diagnostics_;
};

}  // namespace moeflow
