#pragma once
// A node's Prometheus endpoint: GET /metrics (the registry in the text format) and, where the
// node routes tokens, GET /routing (the routing matrix JSON, docs/metrics.md). Its own small HTTP
// server on its own port, so that scrapes never queue behind streamed completions.
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "metrics/registry.h"

namespace httplib {
class Server;
}

namespace moeflow::api {

class MetricsServer {
 public:
  // port 0: any free port (see port()). routing_json empty: no /routing.
  MetricsServer(const metrics::Registry& registry, std::string host, int port,
                std::function<std::string()> routing_json = {});
  ~MetricsServer();

  // Binds and serves in a background thread; throws moeflow::Error naming host:port when it
  // cannot bind.
  void start();
  void stop();
  int port() const { return port_; }

 private:
  const metrics::Registry& registry_;
  std::string host_;
  int port_;
  std::function<std::string()> routing_json_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace moeflow::api
