#pragma once
// Read-only, memory-mapped view of one `.safetensors` file.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}),
// then the data region; offsets are relative to the start of the data region.
//
// Everything in the header is untrusted: open() validates the header length against the file size,
// every dtype, that shape x dtype size == end - begin, that offsets lie inside the data region and
// that no two tensors overlap. Any violation throws moeflow::Error naming the file and the tensor.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace moeflow {

struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // points into the mapping; valid while the file is open
  size_t nbytes = 0;
  const std::filesystem::path* file = nullptr;  // the file that holds it, for error messages

  int64_t numel() const;
};

class MappedFile;  // owns the mmap; defined in safetensors.cpp

class SafetensorsFile {
 public:
  // Maps and validates the file; throws moeflow::Error on any problem.
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return *path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  size_t file_size() const;

 private:
  std::shared_ptr<std::filesystem::path> path_;  // shared so TensorInfo::file stays valid on move
  std::shared_ptr<MappedFile> mapping_;
  std::vector<TensorInfo> tensors_;  // sorted by name
};

}  // namespace moeflow
