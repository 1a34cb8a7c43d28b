#include "api/completion_handler.h"

#include <httplib.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "api/api_error.h"
#include "api/generation_stream.h"
#include "api/stop_matcher.h"

namespace moeflow::api {
namespace {

using nlohmann::json;

// Maps a scheduler refusal or failure to the API error the client gets.
ApiError refusal(const std::string& why) {
  if (why.rfind(kOverloadedPrefix, 0) == 0)
    return ApiError(429, "rate_limit_error", "the server is overloaded (" + why + "); retry later",
                    "", "overloaded");
  if (why.find("context length") != std::string::npos ||
      why.find("KV-cache budget") != std::string::npos)
    return invalid_request(why, "max_tokens", "context_length_exceeded");
  if (why.find("outside the vocabulary") != std::string::npos)
    return invalid_request(why, "prompt");
  return ApiError(503, "server_error", "generation failed: " + why, "", "generation_failed");
}

GenerationRequestPtr build_request(const HandlerContext& ctx, const CompletionRequest& r,
                                   int64_t* prompt_tokens) {
  std::vector<int32_t> ids;
  if (r.chat) {
    ids = ctx.codec.encode_chat(r.messages);
  } else if (!r.prompt_ids.empty()) {
    ids = r.prompt_ids;
  } else {
    ids = ctx.codec.encode_prompt(r.prompt);
  }
  if (ids.empty()) throw invalid_request("the prompt is empty", r.chat ? "messages" : "prompt");
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t context = ctx.options.context_length;
  const SamplingSpec defaults = ctx.options.sampling ? ctx.options.sampling->get() : SamplingSpec{};
  const int64_t endpoint_default = r.chat ? std::max<int64_t>(1, context - n) : 16;
  const int64_t max_tokens = r.max_tokens.value_or(
      defaults.max_tokens > 0 ? std::min(defaults.max_tokens, endpoint_default) : endpoint_default);
  if (n + max_tokens > context)
    throw invalid_request("This model's maximum context length is " + std::to_string(context) +
                              " tokens. However, you requested " + std::to_string(n + max_tokens) +
                              " tokens (" + std::to_string(n) + " in the prompt, " +
                              std::to_string(max_tokens) + " in the completion).",
                          r.chat ? "messages" : "prompt", "context_length_exceeded");
  auto g = std::make_shared<GenerationRequest>();
  g->prompt = std::move(ids);
  g->max_tokens = max_tokens;
  g->sampling.temperature = r.temperature.value_or(static_cast<float>(defaults.temperature));
  g->sampling.top_p = r.top_p.value_or(static_cast<float>(defaults.top_p));
  g->sampling.top_k = r.top_k.value_or(defaults.top_k);
  g->sampling.seed = r.has_seed ? r.seed : std::random_device{}();
  *prompt_tokens = n;
  return g;
}

json usage(int64_t prompt, int64_t completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

// Follows a request's events, turning tokens into text; the same loop serves the streaming and
// the non-streaming answer, so both give the same text.
class TextFollower {
 public:
  TextFollower(const HandlerContext& ctx, const CompletionRequest& r, GenerationRequestPtr g)
      : prompt_tokens_(static_cast<int64_t>(g->prompt.size())),
        stream_(ctx.system, ctx.scheduler, ctx.id, std::move(g)),
        decoder_(ctx.codec.decoder()),
        stops_(r.stop),
        timeout_(ctx.options.request_timeout),
        metrics_(ctx.metrics) {
    if (metrics_) metrics_->request_started();
  }

  ~TextFollower() {
    if (!metrics_) return;
    metrics_->request_ended();
    const char* reason = !error_.empty() ? "error"
                         : finished_     ? finish_reason_.c_str()
                                         : "cancelled";
    metrics_->finished(reason, seconds_since(start_), prompt_tokens_, tokens_);
  }

  // Next piece of text; sets finished() (and finish_reason()) at the end. Throws ApiError when
  // the request fails before any text was produced (`started` false), else returns with
  // error() set.
  std::string next() {
    auto event = stream_.next(timeout_);
    if (!event) {
      error_ = "no token for " + std::to_string(timeout_.count()) + " ms";
      finished_ = true;
      return "";
    }
    switch (event->kind) {
      case StreamEvent::token: {
        ++tokens_;
        if (metrics_) {
          const auto now = std::chrono::steady_clock::now();
          if (tokens_ == 1)
            metrics_->first_token(seconds_since(start_));
          else
            metrics_->next_token(std::chrono::duration<double>(now - last_token_).count());
          last_token_ = now;
        }
        std::string text = stops_.push(decoder_->push(event->token_id));
        if (stops_.stopped()) {
          finished_ = true;
          finish_reason_ = "stop";
        }
        return text;
      }
      case StreamEvent::done:
        finished_ = true;
        finish_reason_ = event->result->finish_reason;
        return stops_.push(decoder_->finish()) + stops_.flush();
      case StreamEvent::failed:
        finished_ = true;
        error_ = event->error;
        if (tokens_ == 0) throw refusal(event->error);
        return "";
    }
    return "";
  }

  bool finished() const { return finished_; }
  const std::string& finish_reason() const { return finish_reason_; }
  const std::string& error() const { return error_; }
  int64_t tokens() const { return tokens_; }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_token_;
  int64_t prompt_tokens_;
  GenerationStream stream_;
  std::unique_ptr<TextStream> decoder_;
  StopMatcher stops_;
  std::chrono::milliseconds timeout_;
  ServingMetrics* metrics_;
  bool finished_ = false;
  std::string finish_reason_ = "length";
  std::string error_;
  int64_t tokens_ = 0;
};

json chunk(const HandlerContext& ctx, const CompletionRequest& r, const std::string& id,
           int64_t created, const std::string& text, const json& finish_reason, bool first) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason}};
  if (r.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (!first && finish_reason.is_null())) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", ctx.options.model_name},
          {"choices", json::array({choice})}};
}

std::string sse(const json& j) {
  return "data: " + j.dump() + "\n\n";
}

}  // namespace

void handle_completion(const HandlerContext& ctx, const CompletionRequest& r,
                       httplib::Response& response) {
  if (r.model != ctx.options.model_name)
    throw ApiError(404, "invalid_request_error",
                   "The model `" + r.model + "` does not exist (this server serves `" +
                       ctx.options.model_name + "`)",
                   "model", "model_not_found");
  int64_t prompt_tokens = 0;
  GenerationRequestPtr g = build_request(ctx, r, &prompt_tokens);
  const std::string id = (r.chat ? "chatcmpl-" : "cmpl-") + std::to_string(ctx.id);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  auto follower = std::make_shared<TextFollower>(ctx, r, g);

  if (!r.stream) {
    std::string text;
    while (!follower->finished()) text += follower->next();
    if (!follower->error().empty())
      throw ApiError(503, "server_error", "generation failed: " + follower->error(), "",
                     "generation_failed");
    json choice = {{"index", 0}, {"finish_reason", follower->finish_reason()}};
    if (r.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", text}};
    } else {
      choice["text"] = text;
      choice["logprobs"] = nullptr;
    }
    const json body = {{"id", id},
                       {"object", r.chat ? "chat.completion" : "text_completion"},
                       {"created", created},
                       {"model", ctx.options.model_name},
                       {"choices", json::array({choice})},
                       {"usage", usage(prompt_tokens, follower->tokens())}};
    response.set_content(body.dump(), "application/json");
    return;
  }

  // Streaming: wait for the first text (or the refusal) before committing to a 200 stream, so
  // that an overloaded or invalid request still gets its status code.
  std::string first_text;
  while (first_text.empty() && !follower->finished()) first_text = follower->next();
  auto first = std::make_shared<bool>(true);
  auto pending = std::make_shared<std::string>(std::move(first_text));
  auto closed = std::make_shared<bool>(false);
  const HandlerContext context = ctx;
  const CompletionRequest request = r;
  response.set_header("Cache-Control", "no-cache");
  response.set_chunked_content_provider("text/event-stream", [=](size_t, httplib::DataSink& sink) {
    if (*closed) return false;
    auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
    if (*first || !pending->empty()) {
      if (!write(sse(chunk(context, request, id, created, *pending, nullptr, *first))))
        return false;  // the client went away: dropping `follower` cancels the request
      *first = false;
      pending->clear();
    }
    if (!follower->finished()) {
      *pending = follower->next();
      return true;
    }
    if (!follower->error().empty()) {
      write(sse({{"error", {{"message", follower->error()}, {"type", "server_error"}}}}));
    } else {
      write(sse(chunk(context, request, id, created, "", follower->finish_reason(), false)));
      if (request.include_usage) {
        json u = chunk(context, request, id, created, "", nullptr, false);
        u["choices"] = json::array();
        u["usage"] = usage(prompt_tokens, follower->tokens());
        write(sse(u));
      }
    }
    write("data: [DONE]\n\n");
    *closed = true;
    sink.done();
    return true;
  });
}

}  // namespace moeflow::api
