#pragma once
// Reading samples back from Prometheus text exposition, for tests.
#include <map>
#include <string>

namespace moeflow::test_support {

// The value of `series` (the name and its labels exactly as written, e.g.
// `moeflow_routing_fsi{layer="1"}`); NaN when there is no such line.
double metric_sample(const std::string& exposition, const std::string& series);

// The sum over every series of metric `name` whose labels include all of `labels`; 0 when none.
double metric_sum(const std::string& exposition, const std::string& name,
                  const std::map<std::string, std::string>& labels = {});

// How many series of metric `name` there are.
int metric_series(const std::string& exposition, const std::string& name);

}  // namespace moeflow::test_support
