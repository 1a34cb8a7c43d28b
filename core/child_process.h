#pragma once
// A child process (e.g. a `moeflow serve` node started by a test or a benchmark), its output
// going to a log file; killed (SIGKILL) when the handle is destroyed if still running.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace moeflow {

class ChildProcess {
 public:
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::filesystem::path& log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void signal(int sig);
  // Waits for the exit and returns its status code (-1 when killed by a signal).
  int wait();
  bool running();
  std::string log() const;  // everything it printed so far

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_file_;
};

}  // namespace moeflow
