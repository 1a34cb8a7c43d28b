#include "api/http_server.h"

#include <httplib.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "api/api_error.h"
#include "api/completion_handler.h"
#include "core/error.h"

namespace moeflow::api {
namespace {

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
  res.set_content(error_body(e), "application/json");
}

}  // namespace

HttpServer::HttpServer(caf::actor_system& system, scheduler_actor scheduler, const TextCodec& codec,
                       HttpServerOptions options, std::function<std::string()> ready)
    : system_(system),
      scheduler_(std::move(scheduler)),
      codec_(codec),
      options_(std::move(options)),
      ready_(std::move(ready)),
      server_(std::make_unique<httplib::Server>()),
      registry_(options_.registry ? *options_.registry : own_registry_) {
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Without it Nagle + delayed ACK hold each streamed chunk back for ~40 ms.
  server_->set_tcp_nodelay(true);
  install_routes();
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::install_routes() {
  auto& s = *server_;
  // Authentication for everything but the probes.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || req.path == "/health" || req.path == "/ready" ||
        req.path == "/metrics" || req.path == "/routing")
      return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + options_.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, "authentication_error",
                             "missing or wrong API key (send Authorization: Bearer <key>)", "",
                             "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  s.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  s.Get("/ready", [this](const httplib::Request&, httplib::Response& res) {
    const std::string why = ready_ ? ready_() : "";
    nlohmann::json body = {{"status", why.empty() ? "ready" : "not ready"}};
    if (!why.empty()) {
      body["reason"] = why;
      res.status = 503;
      res.set_header("Retry-After", "1");
    }
    res.set_content(body.dump(), "application/json");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry_.exposition(), metrics::Registry::content_type);
  });
  if (options_.routing_json)
    s.Get("/routing", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(options_.routing_json(), "application/json");
    });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const nlohmann::json body = {{"object", "list"},
                                 {"data",
                                  {{{"id", options_.model_name},
                                    {"object", "model"},
                                    {"created", 0},
                                    {"owned_by", "moeflow"},
                                    {"max_model_len", options_.context_length}}}}};
    res.set_content(body.dump(), "application/json");
  });
  for (const bool chat : {false, true}) {
    s.Post(chat ? "/v1/chat/completions" : "/v1/completions", [this, chat](
                                                                  const httplib::Request& req,
                                                                  httplib::Response& res) {
      try {
        const CompletionRequest r = parse_completion_request(req.body, chat);
        handle_completion({system_, scheduler_, codec_, options_, next_id_++, &metrics_}, r, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, invalid_request(e.what()));
      }
      metrics_.request_answered(req.path, res.status > 0 ? res.status : 200);
    });
  }
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // an ApiError already wrote its body
    const std::string what = res.status == 404
                                 ? "no route " + req.method + " " + req.path
                                 : "request failed with status " + std::to_string(res.status);
    res.set_content(error_body(ApiError(res.status, "invalid_request_error", what, "",
                                        res.status == 404 ? "not_found" : "")),
                    "application/json");
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, "server_error", what));
      });
}

void HttpServer::start() {
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ < 0) throw Error("HTTP API: cannot bind " + options_.host);
  } else {
    if (!server_->bind_to_port(options_.host, options_.port))
      throw Error("HTTP API: cannot listen on " + options_.host + ":" +
                  std::to_string(options_.port) + " (in use, or not an address of this host)");
    port_ = options_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace moeflow::api
