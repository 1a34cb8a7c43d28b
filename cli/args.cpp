#include "cli/args.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace moeflow::cli {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const OptionSpec* find_spec(const std::vector<OptionSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace

Args::Args(const std::vector<std::string>& argv, const std::vector<OptionSpec>& specs) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.rfind("--", 0) != 0) throw Error("unexpected argument \"" + arg + "\"");
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const OptionSpec* spec = find_spec(specs, name);
    if (!spec) {
      std::string best;
      size_t best_d = 3;
      for (const auto& s : specs)
        if (size_t d = edit_distance(name, s.name); d < best_d) best_d = d, best = s.name;
      throw Error(
          "unknown option --" + name +
          (best.empty() ? std::string(" (see --help)") : " (did you mean --" + best + "?)"));
    }
    if (spec->value_name.empty()) {
      if (inline_value) throw Error("option --" + name + " takes no value");
      values_[name] = "1";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size())
        throw Error("option --" + name + " needs a value (" + spec->value_name + ")");
      value = argv[++i];
    }
    values_[name] = value;
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw Error("option --" + name + " is required (see --help)");
  return *v;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno == ERANGE)
    throw Error("option --" + name + ": expected an integer, got \"" + *v + "\"");
  return x;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0')
    throw Error("option --" + name + ": expected a number, got \"" + *v + "\"");
  return x;
}

std::string format_help(const std::string& usage, const std::string& summary,
                        const std::vector<OptionSpec>& specs) {
  std::ostringstream out;
  out << "Usage: " << usage << "\n\n" << summary << "\n\nOptions:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    out << left << std::string(left.size() < 26 ? 26 - left.size() : 1, ' ') << s.help;
    if (!s.default_value.empty()) out << " (default: " << s.default_value << ")";
    out << "\n";
  }
  out << "  --help                  show this help\n";
  return out.str();
}

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& option) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > INT32_MAX || errno == ERANGE)
      throw Error("option --" + option + ": \"" + item + "\" is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) throw Error("option --" + option + ": no token ids given");
  return ids;
}

}  // namespace moeflow::cli
