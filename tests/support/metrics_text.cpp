#include "tests/support/metrics_text.h"

#include <cmath>
#include <sstream>

namespace moeflow::test_support {
namespace {

// Calls f(labels text without braces, value) for each sample line of metric `name`.
template <typename F>
void for_each_sample(const std::string& exposition, const std::string& name, F f) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    std::string labels;
    std::size_t value_at;
    if (next == '{') {
      const std::size_t close = line.find('}');
      labels = line.substr(name.size() + 1, close - name.size() - 1);
      value_at = close + 2;
    } else if (next == ' ') {
      value_at = name.size() + 1;
    } else {
      continue;  // another metric whose name starts with `name`
    }
    f(labels, std::stod(line.substr(value_at)));
  }
}

}  // namespace

double metric_sample(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return std::nan("");
}

double metric_sum(const std::string& exposition, const std::string& name,
                  const std::map<std::string, std::string>& labels) {
  double sum = 0;
  for_each_sample(exposition, name, [&](const std::string& text, double value) {
    for (const auto& [k, v] : labels)
      if (text.find(k + "=\"" + v + "\"") == std::string::npos) return;
    sum += value;
  });
  return sum;
}

int metric_series(const std::string& exposition, const std::string& name) {
  int n = 0;
  for_each_sample(exposition, name, [&](const std::string&, double) { ++n; });
  return n;
}

}  // namespace moeflow::test_support
