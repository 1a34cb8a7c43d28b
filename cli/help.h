#pragma once
#include <algorithm>
#include <string>
#include <vector>

namespace moeflow::cli {

inline bool wants_help(const std::vector<std::string>& args) {
  return std::find(args.begin(), args.end(), "--help") != args.end() ||
         std::find(args.begin(), args.end(), "-h") != args.end();
}

}  // namespace moeflow::cli
