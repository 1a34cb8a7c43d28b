#pragma once
// One completion or chat-completion request from parsed body to response: builds the scheduler
// request, follows its tokens, decodes and stop-matches the text, and writes either one JSON
// response or a stream of server-sent events.
#include <caf/all.hpp>
#include <functional>
#include <string>

#include "actors/messages.h"
#include "api/http_server.h"
#include "api/openai_request.h"
#include "api/serving_metrics.h"
#include "api/text_codec.h"

namespace httplib {
struct Response;
}

namespace moeflow::api {

struct HandlerContext {
  caf::actor_system& system;
  const scheduler_actor& scheduler;
  const TextCodec& codec;
  const HttpServerOptions& options;
  uint64_t id;
  ServingMetrics* metrics;  // may be null
};

// Throws ApiError for a bad request or a refused one (e.g. overloaded -> 429).
void handle_completion(const HandlerContext& ctx, const CompletionRequest& request,
                       httplib::Response& response);

}  // namespace moeflow::api
