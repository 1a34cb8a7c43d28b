#include "tokenizer/json_field.h"

#include "core/error.h"

namespace moeflow::tokenizer_detail {

JsonField JsonField::at(const std::string& key) const {
  static const nlohmann::json null_value;
  const std::string path = path_.empty() ? key : path_ + "." + key;
  if (!value_.is_object()) return JsonField(null_value, path, file_);
  const auto it = value_.find(key);
  return JsonField(it == value_.end() ? null_value : *it, path, file_);
}

JsonField JsonField::at(size_t index) const {
  return JsonField(value_.at(index), path_ + "[" + std::to_string(index) + "]", file_);
}

void JsonField::fail(const std::string& what) const {
  throw Error(file_ + ": field " + (path_.empty() ? "(top level)" : path_) + ": " + what);
}

std::string JsonField::string(const std::string& key) const {
  const JsonField f = at(key);
  if (f.is_null()) f.fail("is required");
  if (!f.value_.is_string()) f.fail("expected a string, got " + f.value_.dump());
  return f.value_.get<std::string>();
}

std::string JsonField::string(const std::string& key, const std::string& fallback) const {
  return has(key) ? string(key) : fallback;
}

bool JsonField::boolean(const std::string& key, bool fallback) const {
  const JsonField f = at(key);
  if (f.is_null()) return fallback;
  if (!f.value_.is_boolean()) f.fail("expected true or false, got " + f.value_.dump());
  return f.value_.get<bool>();
}

int64_t JsonField::integer(const std::string& key) const {
  const JsonField f = at(key);
  if (f.is_null()) f.fail("is required");
  if (!f.value_.is_number_integer()) f.fail("expected an integer, got " + f.value_.dump());
  return f.value_.get<int64_t>();
}

size_t JsonField::array_size() const {
  if (is_null()) return 0;
  if (!value_.is_array()) fail("expected a list, got " + value_.dump().substr(0, 80));
  return value_.size();
}

void JsonField::require_object() const {
  if (!value_.is_object()) fail("expected an object, got " + value_.dump().substr(0, 80));
}

}  // namespace moeflow::tokenizer_detail
