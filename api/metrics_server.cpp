#include "api/metrics_server.h"

#include <httplib.h>

#include "core/error.h"

namespace moeflow::api {

MetricsServer::MetricsServer(const metrics::Registry& registry, std::string host, int port,
                             std::function<std::string()> routing_json)
    : registry_(registry),
      host_(std::move(host)),
      port_(port),
      routing_json_(std::move(routing_json)),
      server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_.exposition(), metrics::Registry::content_type);
  });
  if (routing_json_)
    server_->Get("/routing", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(routing_json_(), "application/json");
    });
}

MetricsServer::~MetricsServer() {
  stop();
}

void MetricsServer::start() {
  if (port_ == 0) {
    port_ = server_->bind_to_any_port(host_);
    if (port_ < 0) throw Error("metrics endpoint: cannot bind " + host_);
  } else if (!server_->bind_to_port(host_, port_)) {
    throw Error("metrics endpoint: cannot listen on " + host_ + ":" + std::to_string(port_) +
                " (in use, or not an address of this host)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void MetricsServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace moeflow::api
