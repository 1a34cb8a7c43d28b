#pragma once
// Live reconfiguration latency: a router node (this process) and two expert nodes (child
// processes on loopback) serve a graph; the bench saves edits that move experts between the
// expert nodes and times each from the file's rename to the router's new placement in use, beside
// the time the moved experts' weights take to load (measured separately, in this process).
#include <cstdint>
#include <string>

namespace moeflow::bench {

struct ReloadBenchOptions {
  std::string model;
  int64_t edits = 6;
};

int run_reload_bench(const ReloadBenchOptions& opts);

}  // namespace moeflow::bench
