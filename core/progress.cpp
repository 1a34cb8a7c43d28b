#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace moeflow {

Progress::Progress(std::string title, int64_t total, bool enabled)
    : title_(std::move(title)),
      total_(total > 0 ? total : 1),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(int64_t done, const std::string& detail) {
  if (!enabled_) return;
  const int percent = static_cast<int>(100 * done / total_);
  if (tty_) {
    const int width = 30, filled = width * percent / 100;
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %-24s", title_.c_str(), filled,
                 "==============================", width - filled, "", percent, detail.c_str());
    std::fflush(stderr);
  } else if (percent / 25 > last_percent_logged_ / 25) {
    last_percent_logged_ = percent;
    std::fprintf(stderr, "%s: %d%% (%s)\n", title_.c_str(), percent, detail.c_str());
  }
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (tty_) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "%s: done in %.2f s\n", title_.c_str(), secs);
}

}  // namespace moeflow
