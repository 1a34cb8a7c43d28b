#pragma once
// What every benchmark prints and times with, and how it sums up repeated measurements.
#include <string>
#include <vector>

namespace moeflow::bench {

double now_seconds();     // steady clock
std::string cpu_model();  // from /proc/cpuinfo, for the table headers

// The p-quantile (0..1) of `v`, the nearest sample (no interpolation); 0 for an empty `v`.
double percentile(std::vector<double> v, double p);
inline double median(std::vector<double> v) {
  return percentile(std::move(v), 0.5);
}

}  // namespace moeflow::bench
