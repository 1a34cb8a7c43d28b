#include "model/config_reader.h"

#include "core/error.h"

namespace moeflow {

ConfigReader::ConfigReader(const nlohmann::json& object, std::string source)
    : object_(object), source_(std::move(source)) {}

bool ConfigReader::has(const std::string& key) const {
  auto it = object_.find(key);
  return it != object_.end() && !it->is_null();
}

const nlohmann::json& ConfigReader::raw(const std::string& key) const {
  static const nlohmann::json null_value;
  auto it = object_.find(key);
  return it == object_.end() ? null_value : *it;
}

void ConfigReader::fail(const std::string& key, const std::string& what) const {
  throw Error(source_ + ": field " + key + ": " + what);
}

int64_t ConfigReader::integer(const std::string& key) const {
  if (!has(key)) fail(key, "is required");
  const auto& v = raw(key);
  if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
  return v.get<int64_t>();
}

int64_t ConfigReader::integer(const std::string& key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}

int64_t ConfigReader::positive_integer(const std::string& key) const {
  const int64_t v = integer(key);
  if (v <= 0) fail(key, "must be positive, got " + std::to_string(v));
  return v;
}

double ConfigReader::number(const std::string& key) const {
  if (!has(key)) fail(key, "is required");
  const auto& v = raw(key);
  if (!v.is_number()) fail(key, "expected a number, got " + v.dump());
  return v.get<double>();
}

double ConfigReader::number(const std::string& key, double fallback) const {
  return has(key) ? number(key) : fallback;
}

bool ConfigReader::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = raw(key);
  if (!v.is_boolean()) fail(key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}

std::string ConfigReader::string(const std::string& key) const {
  if (!has(key)) fail(key, "is required");
  const auto& v = raw(key);
  if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

std::vector<int64_t> ConfigReader::integer_list(const std::string& key) const {
  std::vector<int64_t> out;
  if (!has(key)) return out;
  const auto& v = raw(key);
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array()) fail(key, "expected an integer or a list of integers, got " + v.dump());
  for (const auto& e : v) {
    if (!e.is_number_integer()) fail(key, "expected a list of integers, got " + v.dump());
    out.push_back(e.get<int64_t>());
  }
  return out;
}

}  // namespace moeflow
