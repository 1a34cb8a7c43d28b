#include "actors/graph_reloader.h"

#include "actors/node_metrics.h"
#include "core/error.h"
#include "transport/handshake.h"

namespace moeflow {

RouterGraphReloader::RouterGraphReloader(RouterNode& node, std::atomic<bool>* sighup,
                                         std::chrono::milliseconds wait_for_nodes, Log log,
                                         Applied applied)
    : node_(node),
      sighup_(sighup),
      wait_for_nodes_(wait_for_nodes),
      log_(std::move(log)),
      applied_(std::move(applied)),
      watcher_(node.graph.file) {}

void RouterGraphReloader::poll() {
  const auto now = std::chrono::steady_clock::now();
  const bool asked = sighup_ && sighup_->exchange(false);
  if (!asked && now - last_look_ < std::chrono::milliseconds(250)) return;
  last_look_ = now;
  if (!watcher_.changed() && !asked) return;
  const std::string file = node_.graph.file.string();
  log_("graph reload: reading " + file + (asked ? " (SIGHUP)" : " (file saved)"));
  GraphSpec next;
  try {
    next = load_graph(file);
  } catch (const GraphError& e) {
    for (const Diagnostic& d : e.diagnostics())
      log_("graph reload refused: " + format_location(d.where) + ": " + d.message);
    count_graph_reload(*node_.registry, "refused");
    return;
  } catch (const Error& e) {
    log_(std::string("graph reload refused: ") + e.what());
    count_graph_reload(*node_.registry, "refused");
    return;
  }
  try {
    const std::string summary = node_.reload(next, wait_for_nodes_);
    const bool unchanged = summary == "no changes";
    count_graph_reload(*node_.registry, unchanged ? "unchanged" : "applied");
    if (!unchanged && applied_) applied_(node_.graph);
    log_("graph reload: " + summary +
         (unchanged ? "" : "; now serving graph " + transport::format_hash(graph_hash(next))));
  } catch (const Error& e) {
    log_(std::string("graph reload refused, the old graph keeps serving: ") + e.what());
    count_graph_reload(*node_.registry, "refused");
  }
}

}  // namespace moeflow
