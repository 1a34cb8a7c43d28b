#pragma once
// What the graph's TOML readers share (graph_parser.cpp, settings_parser.cpp): reporting a problem
// at its file:line:col, unknown keys with a did-you-mean, typed values with a hint for the usual
// slip (a number in quotes). Internal to graph/: the TOML library stays behind these files and
// graph_syntax_error.cpp.
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "graph/did_you_mean.h"
#include "graph/graph_checks.h"

namespace moeflow::graph_detail {

// "a string", "an integer", ... for messages.
std::string type_name(toml::node_type t);
// "a, b, c".
std::string join(const std::vector<std::string>& items);

// A day: any timeout or window longer than this is a typo.
inline constexpr int64_t kTimeoutMaxMs = 86'400'000;

class TomlReader {
 public:
  TomlReader(const std::filesystem::path& file, ParseOutcome& out)
      : file_(file.string()), out_(out) {}

  SourceLocation at(const toml::source_region& r) const {
    return {file_, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }

  void error(const SourceLocation& where, std::string message, std::string hint = "") {
    out_.diagnostics.push_back({where, std::move(message), std::move(hint)});
  }

  // `context` is the table as written in the file ("[shards.a]"); "" is the top level.
  void check_keys(const toml::table& t, const std::string& context,
                  const std::vector<std::string>& allowed) {
    for (auto&& [key, value] : t) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      const std::string guess = closest_match(key.str(), allowed);
      std::string hint = guess.empty() ? "known keys here: " + join(allowed)
                                       : "did you mean " + in_quotes(guess) + "?";
      std::string message;
      if (!context.empty())
        message = "unknown key " + in_quotes(key.str()) + " in " + context;
      else if (value.is_table())
        message = "unknown table [" + std::string(key.str()) + "]";
      else
        message = "unknown top-level key " + in_quotes(key.str());
      error(at(key.source()), message, std::move(hint));
    }
  }

  // The value of `key`, or nullptr; a value of another type than `want` is reported.
  const toml::node* typed(const toml::table& t, std::string_view key, const std::string& context,
                          toml::node_type want) {
    const toml::node* n = t.get(key);
    if (!n || n->type() == want) return n;
    std::string hint;
    const std::string text = n->is_string() ? n->as_string()->get() : "";
    if (want == toml::node_type::integer && !text.empty() &&
        std::all_of(text.begin(), text.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      hint = "write " + std::string(key) + " = " + text + ", without quotes";
    else if (want == toml::node_type::boolean && (text == "true" || text == "false"))
      hint = "write " + std::string(key) + " = true or false, without quotes";
    else if (want == toml::node_type::string && (n->is_integer() || n->is_floating_point()))
      hint = "write " + std::string(key) + " = \"...\", in quotes";
    error(at(n->source()),
          std::string(key) + " in " + context + " must be " + type_name(want) + ", not " +
              type_name(n->type()),
          std::move(hint));
    return nullptr;
  }

  std::optional<std::string> get_string(const toml::table& t, std::string_view key,
                                        const std::string& context, SourceLocation* where) {
    const toml::node* n = typed(t, key, context, toml::node_type::string);
    if (!n) return std::nullopt;
    if (where) *where = at(n->source());
    return n->as_string()->get();
  }

  // A port, or 0 when absent or invalid (invalid ones are reported).
  int get_port(const toml::table& t, std::string_view key, const std::string& context,
               SourceLocation* where) {
    const toml::node* n = typed(t, key, context, toml::node_type::integer);
    if (!n) return 0;
    *where = at(n->source());
    const int64_t v = n->as_integer()->get();
    if (v < 1 || v > 65535) {
      error(*where,
            std::string(key) + " " + std::to_string(v) + " in " + context + " is outside 1-65535",
            "ports below 1024 need root; pick a free port such as 5550");
      return 0;
    }
    return static_cast<int>(v);
  }

  // The integer at `key` when it lies in [low, high], else nullopt: a wrong type or a value out
  // of range is reported as "KEY V in CONTEXT " + `rule` (default "is outside LOW-HIGH").
  // `where`, when given, receives the value's place.
  std::optional<int64_t> get_int_in(const toml::table& t, std::string_view key,
                                    const std::string& context, int64_t low, int64_t high,
                                    const std::string& hint, const std::string& rule = "",
                                    SourceLocation* where = nullptr) {
    const toml::node* n = typed(t, key, context, toml::node_type::integer);
    if (!n) return std::nullopt;
    if (where) *where = at(n->source());
    const int64_t v = n->as_integer()->get();
    if (v < low || v > high) {
      error(at(n->source()),
            std::string(key) + " " + std::to_string(v) + " in " + context + " " +
                (rule.empty() ? "is outside " + std::to_string(low) + "-" + std::to_string(high)
                              : rule),
            hint);
      return std::nullopt;
    }
    return v;
  }

  // The number (integer or float) at `key` when `ok` holds for it, else nullopt: anything else
  // there is reported as "KEY in CONTEXT " + `rule`.
  template <typename Ok>
  std::optional<double> get_number_if(const toml::table& t, std::string_view key,
                                      const std::string& context, Ok ok, const std::string& rule,
                                      const std::string& hint) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    std::optional<double> v;
    if (n->is_floating_point()) v = n->as_floating_point()->get();
    if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
    if (!v || !ok(*v)) {
      error(at(n->source()), std::string(key) + " in " + context + " " + rule, hint);
      return std::nullopt;
    }
    return v;
  }

  // A table entry, or nullptr; anything else in its place is reported.
  const toml::table* get_table(const toml::table& t, std::string_view key, std::string hint) {
    const toml::node* n = t.get(key);
    if (!n) return nullptr;
    if (const toml::table* tt = n->as_table()) return tt;
    error(at(n->source()),
          std::string(key) + " must be a table [" + std::string(key) + "], not " +
              type_name(n->type()),
          std::move(hint));
    return nullptr;
  }

 protected:
  std::string file_;
  ParseOutcome& out_;
};

}  // namespace moeflow::graph_detail
