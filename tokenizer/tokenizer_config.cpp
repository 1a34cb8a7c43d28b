#include "tokenizer/tokenizer_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/json_field.h"

namespace moeflow {
namespace {

using tokenizer_detail::JsonField;

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A token field is a string, or an AddedToken object {"content": ...}, or null.
std::string token_text(const JsonField& root, const std::string& key) {
  const JsonField f = root.at(key);
  if (f.is_null()) return "";
  if (f.value().is_string()) return f.value().get<std::string>();
  if (f.value().is_object()) return f.string("content");
  f.fail("expected a string or {\"content\": ...}, got " + f.value().dump());
}

}  // namespace

TokenizerConfig TokenizerConfig::load(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "tokenizer_config.json";
  TokenizerConfig config;
  config.source = path.string();
  const auto text = read_file(path);
  if (!text) throw Error(config.source + ": cannot open");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(config.source + ": not valid JSON: " + e.what());
  }
  const JsonField root(doc, "", config.source);
  root.require_object();
  config.bos_token = token_text(root, "bos_token");
  config.eos_token = token_text(root, "eos_token");

  const JsonField tmpl = root.at("chat_template");
  if (tmpl.value().is_string()) {
    config.chat_template = tmpl.value().get<std::string>();
  } else if (tmpl.value().is_array()) {
    // Several named templates: the one named "default" is what apply_chat_template uses.
    for (size_t i = 0; i < tmpl.array_size(); ++i) {
      const JsonField entry = tmpl.at(i);
      if (entry.string("name") == "default") config.chat_template = entry.string("template");
    }
    if (!config.chat_template) tmpl.fail("no template named \"default\"");
  } else if (!tmpl.is_null()) {
    tmpl.fail("expected a string or a list of {\"name\", \"template\"}");
  } else {
    config.chat_template = read_file(dir / "chat_template.jinja");
  }
  return config;
}

}  // namespace moeflow
