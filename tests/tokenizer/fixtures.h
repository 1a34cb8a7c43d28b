#pragma once
// The tokenizer conformance fixtures of tests/tokenizer_fixtures/ (made by
// make_tokenizer_fixtures.py with the Hugging Face tokenizers library).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace moeflow::test_support {

inline std::filesystem::path tokenizer_fixture(const std::string& name) {
  return std::filesystem::path(MOEFLOW_SOURCE_DIR) / "tests" / "tokenizer_fixtures" / name;
}

inline nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// One folder per tokenizer shape (see make_tokenizer_fixtures.py).
inline const std::vector<std::string>& tokenizer_variants() {
  static const std::vector<std::string> names = {"qwen2",   "llama3", "neox",     "deepseek",
                                                 "mixtral", "llama2", "metaspace"};
  return names;
}

// A string with control characters escaped, for failure messages.
inline std::string shown(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace moeflow::test_support
