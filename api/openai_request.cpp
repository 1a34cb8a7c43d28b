#include "api/openai_request.h"

#include <nlohmann/json.hpp>

#include "api/api_error.h"

namespace moeflow::api {
namespace {

using nlohmann::json;

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> number(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw invalid_request(std::string(name) + " must be a number", name);
  const double x = v->get<double>();
  if (x < lo || x > hi)
    throw invalid_request(std::string(name) + " must be between " + std::to_string(lo) + " and " +
                              std::to_string(hi) + ", got " + std::to_string(x),
                          name);
  return x;
}

std::string text(const json& v, const char* name) {
  if (!v.is_string()) throw invalid_request(std::string(name) + " must be a string", name);
  return v.get<std::string>();
}

std::string message_content(const json& m, size_t i) {
  const json* c = field(m, "content");
  const std::string param = "messages[" + std::to_string(i) + "].content";
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (c->is_array()) {  // content parts: only text parts are supported
    std::string out;
    for (const auto& part : *c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        throw invalid_request("only text content parts are supported", param);
      out += part["text"].get<std::string>();
    }
    return out;
  }
  throw invalid_request(param + " must be a string or a list of text parts", param);
}

}  // namespace

CompletionRequest parse_completion_request(const std::string& raw, bool chat) {
  json body;
  try {
    body = json::parse(raw);
  } catch (const json::parse_error& e) {
    throw invalid_request(std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw invalid_request("the request body must be a JSON object");
  CompletionRequest r;
  r.chat = chat;
  const json* model = field(body, "model");
  if (!model) throw invalid_request("you must provide a model parameter", "model");
  r.model = text(*model, "model");

  if (chat) {
    const json* messages = field(body, "messages");
    if (!messages || !messages->is_array() || messages->empty())
      throw invalid_request("messages must be a non-empty list", "messages");
    for (size_t i = 0; i < messages->size(); ++i) {
      const json& m = (*messages)[i];
      if (!m.is_object() || !field(m, "role") || !m["role"].is_string())
        throw invalid_request("messages[" + std::to_string(i) + "] needs a role",
                              "messages[" + std::to_string(i) + "].role");
      const std::string role = m["role"];
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        throw invalid_request("messages[" + std::to_string(i) + "].role \"" + role +
                                  "\" is not one of system, user, assistant",
                              "messages[" + std::to_string(i) + "].role");
      r.messages.push_back({role == "developer" ? "system" : role, message_content(m, i)});
    }
  } else {
    const json* prompt = field(body, "prompt");
    if (!prompt) throw invalid_request("you must provide a prompt", "prompt");
    if (prompt->is_string()) {
      r.prompt = prompt->get<std::string>();
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
      for (const auto& t : *prompt) {
        if (!t.is_number_integer())
          throw invalid_request("prompt token ids must be integers", "prompt");
        r.prompt_ids.push_back(t.get<int32_t>());
      }
    } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
      r.prompt = (*prompt)[0].get<std::string>();
    } else {
      throw invalid_request("prompt must be a string, a list with one string, or token ids",
                            "prompt");
    }
  }

  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const json* v = field(body, key)) {
      if (!v->is_number_integer() || v->get<int64_t>() < 1)
        throw invalid_request(std::string(key) + " must be a positive integer", key);
      r.max_tokens = v->get<int64_t>();
    }
  }
  if (const auto t = number(body, "temperature", 0.0, 2.0)) r.temperature = static_cast<float>(*t);
  if (const auto p = number(body, "top_p", 0.0, 1.0)) {
    if (*p == 0.0) throw invalid_request("top_p must be greater than 0", "top_p");
    r.top_p = static_cast<float>(*p);
  }
  if (const json* v = field(body, "top_k")) {
    if (!v->is_number_integer() || v->get<int64_t>() < -1)
      throw invalid_request("top_k must be an integer >= -1", "top_k");
    r.top_k = std::max<int64_t>(0, v->get<int64_t>());
  }
  if (const json* v = field(body, "seed")) {
    if (!v->is_number_integer()) throw invalid_request("seed must be an integer", "seed");
    r.seed = static_cast<uint64_t>(v->get<int64_t>());
    r.has_seed = true;
  }
  if (const json* v = field(body, "n")) {
    if (!v->is_number_integer() || v->get<int64_t>() != 1)
      throw invalid_request("only n = 1 is supported", "n");
  }
  if (const json* v = field(body, "stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array() && v->size() <= 4) {
      for (const auto& s : *v) r.stop.push_back(text(s, "stop"));
    } else {
      throw invalid_request("stop must be a string or a list of up to 4 strings", "stop");
    }
    for (const auto& s : r.stop)
      if (s.empty()) throw invalid_request("stop strings must not be empty", "stop");
  }
  if (const json* v = field(body, "stream")) {
    if (!v->is_boolean()) throw invalid_request("stream must be true or false", "stream");
    r.stream = v->get<bool>();
  }
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object())
      throw invalid_request("stream_options must be an object", "stream_options");
    r.include_usage = v->value("include_usage", false);
  }
  if (const json* v = field(body, "logprobs"))
    if ((v->is_boolean() && v->get<bool>()) || v->is_number_integer())
      throw invalid_request("logprobs are not supported", "logprobs");
  for (const char* key : {"presence_penalty", "frequency_penalty"})
    if (number(body, key, -2.0, 2.0).value_or(0.0) != 0.0)
      throw invalid_request(std::string(key) + " is not supported (only 0)", key);
  return r;
}

}  // namespace moeflow::api
