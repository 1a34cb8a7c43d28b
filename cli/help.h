#pragma once
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"

namespace moeflow::cli {

inline bool wants_help(const std::vector<std::string>& args) {
  return std::find(args.begin(), args.end(), "--help") != args.end() ||
         std::find(args.begin(), args.end(), "-h") != args.end();
}

// Prints a command's help to stdout and returns true when the arguments ask for it.
inline bool print_help_if_asked(const std::vector<std::string>& args, const std::string& usage,
                                const std::string& summary, const std::vector<OptionSpec>& specs) {
  if (!wants_help(args)) return false;
  std::fputs(format_help(usage, summary, specs).c_str(), stdout);
  return true;
}

}  // namespace moeflow::cli
