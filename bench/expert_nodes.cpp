#include "bench/expert_nodes.h"

#include <signal.h>

namespace moeflow::bench {

ExpertNodes::ExpertNodes(const GraphSpec& graph, const std::filesystem::path& file,
                         const std::filesystem::path& log_dir, const std::string& log_prefix) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  for (const NodeSpec& n : graph.nodes)
    if (!n.router)
      children_.push_back(std::make_unique<ChildProcess>(
          self, std::vector<std::string>{"serve", "--graph", file.string(), "--node", n.name},
          log_dir / (log_prefix + n.name + ".log")));
}

ExpertNodes::~ExpertNodes() {
  for (auto& c : children_) c->signal(SIGTERM);
  for (auto& c : children_) c->wait();
}

}  // namespace moeflow::bench
