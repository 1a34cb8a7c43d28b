#pragma once
// The expert nodes of a benchmark's graph as child processes of this binary
// (`moeflow serve --graph FILE --node NAME`), logging to DIR/PREFIXNAME.log; stopped (SIGTERM,
// then waited for) when the handle goes.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/child_process.h"
#include "graph/graph.h"

namespace moeflow::bench {

class ExpertNodes {
 public:
  ExpertNodes(const GraphSpec& graph, const std::filesystem::path& file,
              const std::filesystem::path& log_dir, const std::string& log_prefix = "");
  ~ExpertNodes();
  ExpertNodes(const ExpertNodes&) = delete;
  ExpertNodes& operator=(const ExpertNodes&) = delete;

 private:
  std::vector<std::unique_ptr<ChildProcess>> children_;
};

}  // namespace moeflow::bench
