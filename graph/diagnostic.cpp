#include "graph/diagnostic.h"

namespace moeflow {
namespace {

std::string join_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) out += (out.empty() ? "" : "\n") + format_diagnostic(d);
  return out;
}

}  // namespace

std::string format_location(const SourceLocation& where) {
  if (where.line <= 0) return where.file;
  return where.file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
}

std::string format_diagnostic(const Diagnostic& d) {
  std::string out = format_location(d.where) + ": error: " + d.message;
  if (!d.hint.empty()) out += " (hint: " + d.hint + ")";
  return out;
}

GraphError::GraphError(std::vector<Diagnostic> diagnostics)
    : Error(join_diagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

}  // namespace moeflow
