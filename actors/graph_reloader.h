#pragma once
// The router node's side of live reconfiguration: notices SIGHUP (a flag set by the signal
// handler) or a saved graph file, validates the new graph and applies it with RouterNode::reload.
// A graph that fails validation or cannot be applied live is refused: its errors go to the log
// and moeflow_graph_reloads_total{result="refused"} counts it; the old graph keeps serving.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "actors/router_node.h"
#include "graph/graph_watcher.h"

namespace moeflow {

class RouterGraphReloader {
 public:
  using Log = std::function<void(const std::string&)>;
  // `wait_for_nodes`: how long a reload waits for the expert nodes to load the same graph.
  // `applied` (optional) is called with each graph once it serves: for settings that live outside
  // the node, such as the HTTP gateway's [sampling] defaults.
  using Applied = std::function<void(const GraphSpec&)>;
  RouterGraphReloader(RouterNode& node, std::atomic<bool>* sighup,
                      std::chrono::milliseconds wait_for_nodes, Log log, Applied applied = {});

  // Looks for a change (the file at most every 250 ms, the flag every call) and applies it.
  void poll();

 private:
  RouterNode& node_;
  std::atomic<bool>* sighup_;
  std::chrono::milliseconds wait_for_nodes_;
  Log log_;
  Applied applied_;
  GraphFileWatcher watcher_;
  std::chrono::steady_clock::time_point last_look_{};
};

}  // namespace moeflow
