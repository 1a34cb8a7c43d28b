#include "model/checkpoint.h"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "core/error.h"

namespace moeflow {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* index_name = "model.safetensors.index.json";
constexpr const char* single_name = "model.safetensors";

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw Error(path.string() + ": " + what);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot read the file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(path, "not valid JSON");
  return j;
}

// A shard must be a plain file name inside the checkpoint folder: a name with a path in it could
// make a downloaded index read any file on the machine.
void check_shard_name(const fs::path& index, const std::string& tensor, const std::string& shard) {
  const bool bad = shard.empty() || shard == "." || shard == ".." ||
                   shard.find_first_of(std::string("/\\\0", 3)) != std::string::npos;
  if (bad)
    fail(index, "tensor " + tensor + ": shard name \"" + shard + "\" is not a plain file name");
}

// shard file name -> tensor names the index puts in it.
std::map<std::string, std::vector<std::string>> read_weight_map(const fs::path& index) {
  const json j = read_json(index);
  if (!j.is_object()) fail(index, "not a JSON object");
  const auto it = j.find("weight_map");
  if (it == j.end()) fail(index, "missing \"weight_map\"");
  if (!it->is_object()) fail(index, "\"weight_map\" is not an object");
  if (it->empty()) fail(index, "\"weight_map\" is empty");
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [tensor, shard] : it->items()) {
    if (!shard.is_string()) fail(index, "tensor " + tensor + ": shard is not a string");
    const auto& name = shard.get_ref<const std::string&>();
    check_shard_name(index, tensor, name);
    shards[name].push_back(tensor);
  }
  return shards;
}

}  // namespace

Checkpoint::Checkpoint(const Checkpoint& other) : dir_(other.dir_), files_(other.files_) {
  index_tensors();
}

Checkpoint& Checkpoint::operator=(const Checkpoint& other) {
  if (this != &other) {
    dir_ = other.dir_;
    files_ = other.files_;
    index_tensors();
  }
  return *this;
}

Checkpoint Checkpoint::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail(dir, "checkpoint folder does not exist");
  if (!fs::is_directory(dir, ec)) fail(dir, "checkpoint path is not a folder");

  Checkpoint ck;
  ck.dir_ = dir;
  const fs::path index = dir / index_name;
  if (is_file(index)) {
    const auto shards = read_weight_map(index);
    ck.files_.reserve(shards.size());
    for (const auto& [shard, tensors] : shards) {
      const fs::path shard_path = dir / shard;
      if (!fs::exists(shard_path, ec)) {
        fail(index, "shard " + shard + " (for tensor " + tensors.front() + ") is missing from " +
                        dir.string());
      }
      ck.files_.push_back(SafetensorsFile::open(shard_path));
      for (const auto& t : tensors) {
        if (ck.files_.back().find(t) == nullptr) {
          fail(index, "tensor " + t + " is listed in shard " + shard + " but " +
                          shard_path.string() + " does not contain it");
        }
      }
    }
  } else if (is_file(dir / single_name)) {
    ck.files_.push_back(SafetensorsFile::open(dir / single_name));
  } else {
    fail(dir, std::string("no ") + single_name + " or " + index_name);
  }
  ck.index_tensors();
  return ck;
}

void Checkpoint::index_tensors() {
  by_name_.clear();
  for (const auto& file : files_) {
    for (const auto& t : file.tensors()) {
      const auto [it, inserted] = by_name_.emplace(t.name, &t);
      if (!inserted) {
        fail(dir_, "tensor " + t.name + " is in both " + it->second->file->string() + " and " +
                       file.path().string());
      }
    }
  }
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorInfo& Checkpoint::get(std::string_view name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) fail(dir_, "tensor " + std::string(name) + " is missing");
  return *t;
}

const TensorInfo& Checkpoint::get(std::string_view name,
                                  std::initializer_list<int64_t> shape) const {
  const TensorInfo& t = get(name);
  const std::vector<int64_t> expected(shape);
  if (t.shape != expected) {
    fail(*t.file, "tensor " + t.name + " has shape " + shape_string(t.shape) + ", expected " +
                      shape_string(expected));
  }
  return t;
}

size_t Checkpoint::total_tensor_bytes() const {
  size_t total = 0;
  for (const auto& [name, t] : by_name_) total += t->nbytes;
  return total;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

}  // namespace moeflow
