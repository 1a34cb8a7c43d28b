#pragma once
// A small command-line parser: `--name value` options and `--flag` switches, declared up front so
// that an unknown or misspelt option is an error with a suggestion, not silently ignored.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moeflow::cli {

struct OptionSpec {
  std::string name;        // without the leading "--"
  std::string value_name;  // empty for a switch
  std::string help;
  std::string default_value;  // shown in --help
};

class Args {
 public:
  // Throws moeflow::Error on an unknown option, a missing value, or a stray argument.
  Args(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs);

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;

 private:
  std::map<std::string, std::string> values_;
};

// "Usage: ...\n\nOptions:\n  --name VALUE  help (default: x)\n..."
std::string format_help(const std::string& usage, const std::string& summary,
                        const std::vector<OptionSpec>& specs);

// Parses "1,2,3" into token ids; throws naming the bad element.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& option);

}  // namespace moeflow::cli
