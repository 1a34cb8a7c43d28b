#pragma once
// Progress of long work (model loading) on stderr: a redrawn bar on a terminal, a few plain log
// lines otherwise, nothing when disabled.
#include <chrono>
#include <cstdint>
#include <string>

namespace moeflow {

class Progress {
 public:
  Progress(std::string title, int64_t total, bool enabled);
  void update(int64_t done, const std::string& detail = {});
  void finish();

 private:
  std::string title_;
  int64_t total_;
  bool enabled_, tty_;
  int last_percent_logged_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace moeflow
