#pragma once
// A node of tokenizer.json (or tokenizer_config.json) with its path, so that every refusal names
// the file and the field: "dir/tokenizer.json: field pre_tokenizer.pretokenizers[1].type: ...".
#include <nlohmann/json.hpp>
#include <string>

namespace moeflow::tokenizer_detail {

class JsonField {
 public:
  JsonField(const nlohmann::json& value, std::string path, const std::string& file)
      : value_(value), path_(std::move(path)), file_(file) {}

  const nlohmann::json& value() const { return value_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  bool is_null() const { return value_.is_null(); }

  // A member (a null node when absent) and an array element.
  JsonField at(const std::string& key) const;
  JsonField at(size_t index) const;
  bool has(const std::string& key) const { return !at(key).is_null(); }

  // Typed members; the forms without a fallback require the member.
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  int64_t integer(const std::string& key) const;
  // This node as an array / object (a null node counts as empty).
  size_t array_size() const;
  void require_object() const;

  // Throws moeflow::Error "<file>: field <path>: <what>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  const nlohmann::json& value_;
  std::string path_;
  const std::string& file_;
};

}  // namespace moeflow::tokenizer_detail
