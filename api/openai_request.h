#pragma once
// The body of /v1/completions and /v1/chat/completions, parsed and checked into a plain struct.
// Every wrong type or out-of-range value is an ApiError naming the parameter.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moeflow::api {

struct ChatTurn {
  std::string role;  // system | user | assistant
  std::string content;
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::string prompt;               // completions: text prompt
  std::vector<int32_t> prompt_ids;  // completions: a prompt given as token ids
  std::vector<ChatTurn> messages;   // chat
  // Absent: the graph's [sampling] default (see api/sampling_defaults.h).
  std::optional<int64_t> max_tokens;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int64_t> top_k;  // not an OpenAI parameter; accepted as vLLM does
  uint64_t seed = 0;
  bool has_seed = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// `body` is the raw request body; throws ApiError.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

}  // namespace moeflow::api
