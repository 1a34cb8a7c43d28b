#pragma once
// Typed access to a JSON config object with errors that name the source file and the field.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace moeflow {

class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& object, std::string source);

  bool has(const std::string& key) const;  // present and not null
  int64_t integer(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  // As integer(key), and refuses zero and negative values.
  int64_t positive_integer(const std::string& key) const;
  double number(const std::string& key) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> integer_list(const std::string& key) const;  // empty when absent
  const nlohmann::json& raw(const std::string& key) const;          // null when absent

  // Throws "<source>: field <key>: <what>".
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

 private:
  const nlohmann::json& object_;
  std::string source_;
};

}  // namespace moeflow
