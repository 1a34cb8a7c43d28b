#pragma once
// Runs a shell command line (e.g. the moeflow binary) and returns its exit code and output.
#include <string>

namespace moeflow::test_support {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

CommandResult run_command(const std::string& command_line);

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace moeflow::test_support
