#pragma once
// What the tokenizer needs from a model folder's tokenizer_config.json: the chat template and
// the bos / eos token texts the template refers to.
#include <filesystem>
#include <optional>
#include <string>

namespace moeflow {

struct TokenizerConfig {
  std::string source;                // the file, for errors
  std::string bos_token, eos_token;  // empty when not set
  // The "default" template; from chat_template.jinja when the JSON has none (newer transformers
  // save it there).
  std::optional<std::string> chat_template;

  // Reads `dir`/tokenizer_config.json; throws moeflow::Error when it is missing or malformed.
  static TokenizerConfig load(const std::filesystem::path& dir);
};

}  // namespace moeflow
