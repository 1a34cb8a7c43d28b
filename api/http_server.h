#pragma once
// The OpenAI-compatible HTTP API: /v1/completions and /v1/chat/completions (streaming with
// server-sent events or not), /v1/models, /health, /ready. Requests become scheduler requests;
// tokens come back through a GenerationStream and are decoded to text as they arrive. Errors use
// the OpenAI error body with the matching status (400, 401, 404, 429 with Retry-After, 500, 503).
// GET /metrics serves the Prometheus metrics, GET /routing the routing matrix.
#include <atomic>
#include <caf/all.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "actors/messages.h"
#include "api/sampling_defaults.h"
#include "api/serving_metrics.h"
#include "api/text_codec.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}

namespace moeflow::api {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;      // 0: any free port (see HttpServer::port())
  std::string api_key;  // empty: no authentication
  std::string model_name;
  int64_t context_length = 0;
  std::chrono::milliseconds request_timeout{120000};  // per event (token)
  int threads = 64;  // connections served at once (streams hold one each)
  // The node's metrics, served at /metrics with the gateway's own; null: the gateway's only.
  metrics::Registry* registry = nullptr;
  // Answers GET /routing (the routing matrix JSON, docs/metrics.md); empty: no such route.
  std::function<std::string()> routing_json;
  // Defaults for sampling parameters a request leaves out; null: the OpenAI API's own.
  std::shared_ptr<const SamplingDefaults> sampling;
};

class HttpServer {
 public:
  // `ready` answers /ready (e.g. whether every expert node is up): empty string when ready, else
  // the reason.
  HttpServer(caf::actor_system& system, scheduler_actor scheduler, const TextCodec& codec,
             HttpServerOptions options, std::function<std::string()> ready);
  ~HttpServer();

  // Binds and serves in a background thread. Throws moeflow::Error when it cannot bind.
  void start();
  void stop();
  int port() const { return port_; }

 private:
  void install_routes();

  caf::actor_system& system_;
  scheduler_actor scheduler_;
  const TextCodec& codec_;
  HttpServerOptions options_;
  std::function<std::string()> ready_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<uint64_t> next_id_{1};
  metrics::Registry own_registry_;
  metrics::Registry& registry_;
  ServingMetrics metrics_{registry_};
  int port_ = 0;
};

}  // namespace moeflow::api
