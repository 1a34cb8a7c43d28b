#include "graph/graph_watcher.h"

#include <fstream>
#include <sstream>
#include <system_error>

namespace moeflow {
namespace {

bool read_file(const std::filesystem::path& file, std::string* out) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) return false;
  *out = text.str();
  return true;
}

}  // namespace

GraphFileWatcher::GraphFileWatcher(std::filesystem::path file) : file_(std::move(file)) {
  std::error_code ec;
  mtime_ = std::filesystem::last_write_time(file_, ec);
  size_ = std::filesystem::file_size(file_, ec);
  read_file(file_, &content_);
}

bool GraphFileWatcher::changed() {
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(file_, ec);
  if (ec) return false;  // missing for a moment (an editor replacing it): look again later
  const auto size = std::filesystem::file_size(file_, ec);
  if (ec || (mtime == mtime_ && size == size_)) return false;
  std::string content;
  if (!read_file(file_, &content)) return false;
  mtime_ = mtime;
  size_ = size;
  if (content == content_) return false;
  content_ = std::move(content);
  return true;
}

}  // namespace moeflow
