// The diagnostic for a TOML syntax error. A table or key defined twice is said in the graph's
// terms ("node \"a\" is defined twice"), with the line of the first definition, found by parsing
// the text before the second one. toml++ is used here and in graph_parser.cpp only.
#include <toml++/toml.h>

#include <regex>
#include <sstream>

#include "graph/did_you_mean.h"
#include "graph/graph_checks.h"

namespace moeflow::graph_detail {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The line where `path` was first defined, found by parsing the text before `line`; 0 if unknown.
int first_definition(const std::vector<std::string>& lines, int line, const std::string& path) {
  std::string prefix;
  for (int i = 0; i + 1 < line && i < static_cast<int>(lines.size()); ++i)
    prefix += lines[i] + "\n";
  try {
    const toml::table t = toml::parse(prefix);
    const toml::node_view<const toml::node> n = t.at_path(path);
    return n ? static_cast<int>(n.node()->source().begin.line) : 0;
  } catch (const toml::parse_error&) {
    return 0;
  }
}

}  // namespace

Diagnostic syntax_diagnostic(const std::string& desc, const SourceLocation& where,
                             const std::string& text) {
  static const std::regex redefine(R"(cannot redefine existing ([a-z -]+) '([^']*)')");
  std::smatch m;
  if (!std::regex_search(desc, m, redefine)) {
    std::string message = desc;
    const std::string noise = "Error while parsing ";
    if (message.rfind(noise, 0) == 0) message = message.substr(noise.size());
    return {where, "invalid TOML: " + message, ""};
  }
  const std::vector<std::string> lines = split_lines(text);
  const std::string what = m[1], path = m[2];
  if (what == "table") {
    const int first = first_definition(lines, where.line, path);
    const std::string at_line = first ? " at line " + std::to_string(first) : "";
    for (const char* group : {"nodes", "shards"}) {
      const std::string prefix = std::string(group) + ".";
      if (path.rfind(prefix, 0) == 0 && path.find('.', prefix.size()) == std::string::npos) {
        const std::string kind = std::string(group) == "nodes" ? "node" : "shard";
        return {where, kind + " " + in_quotes(path.substr(prefix.size())) + " is defined twice",
                "the first [" + path + "] is" + at_line + "; every " + kind +
                    " needs a name of its own"};
      }
    }
    return {where, "[" + path + "] is defined twice", "the first is" + at_line + "; merge them"};
  }
  // A key set twice: the library names only the key, so find its table from the last header.
  std::string table;
  static const std::regex header(R"(^\s*\[\s*([^\[\]]+?)\s*\])");
  for (int i = where.line - 2; i >= 0 && i < static_cast<int>(lines.size()); --i) {
    std::smatch h;
    if (std::regex_search(lines[i], h, header)) {
      table = h[1];
      break;
    }
  }
  const int first = first_definition(lines, where.line, table.empty() ? path : table + "." + path);
  // The library points at the second value; the key is where the eye goes.
  SourceLocation key_where = where;
  if (where.line >= 1 && where.line <= static_cast<int>(lines.size())) {
    const size_t col = lines[where.line - 1].find(path);
    if (col != std::string::npos && static_cast<int>(col) < where.column)
      key_where.column = static_cast<int>(col) + 1;
  }
  return {
      key_where,
      "key " + in_quotes(path) + (table.empty() ? "" : " in [" + table + "]") + " is set twice",
      first ? "the first is at line " + std::to_string(first) + "; keep one" : "keep one of them"};
}

}  // namespace moeflow::graph_detail
