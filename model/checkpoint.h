#pragma once
// A Hugging Face checkpoint folder: `config.json` plus either `model.safetensors` or a sharded set
// described by `model.safetensors.index.json` ({"weight_map": {"tensor": "shard file"}}).
// All shards are memory-mapped; tensors are looked up by their published names.
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/safetensors.h"

namespace moeflow {

class Checkpoint {
 public:
  Checkpoint() = default;
  // by_name_ points into files_: a copy rebuilds it, a move keeps the vector's buffer.
  Checkpoint(const Checkpoint& other);
  Checkpoint& operator=(const Checkpoint& other);
  Checkpoint(Checkpoint&&) noexcept = default;
  Checkpoint& operator=(Checkpoint&&) noexcept = default;

  // Opens every weight file of the folder. Throws moeflow::Error when the folder, the index or a
  // shard is missing or invalid, or when the index names a tensor its shard lacks.
  static Checkpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }

  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  // Throws "<dir>: tensor <name> is missing" when absent.
  const TensorInfo& get(std::string_view name) const;
  // As get(), and also checks the shape: throws
  // "<file>: tensor <name> has shape [a, b], expected [c, d]" on mismatch.
  const TensorInfo& get(std::string_view name, std::initializer_list<int64_t> shape) const;

  // Sum of all tensor bytes, and the dtypes present (for `inspect`).
  size_t total_tensor_bytes() const;
  size_t tensor_count() const { return by_name_.size(); }

 private:
  void index_tensors();  // fills by_name_ from files_; throws on a name held by two files

  std::filesystem::path dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
};

// "[a, b, c]" for error messages.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace moeflow
