#pragma once
// Notices that a deployment graph file was saved with new content: a cheap stat() on every call,
// and a read (compared by content, so that touching the file or rewriting the same text changes
// nothing) only when its size or modification time moved.
#include <cstdint>
#include <filesystem>
#include <string>

namespace moeflow {

class GraphFileWatcher {
 public:
  explicit GraphFileWatcher(std::filesystem::path file);

  // True once per change of the file's content since construction or the last true.
  bool changed();

 private:
  std::filesystem::path file_;
  std::filesystem::file_time_type mtime_{};
  std::uintmax_t size_ = 0;
  std::string content_;
};

}  // namespace moeflow
