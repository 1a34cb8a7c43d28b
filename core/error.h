#pragma once
// One exception type for everything the user can get wrong: a bad checkpoint, a bad config, a bad
// command line. The message always carries its context (file, tensor, field) so that the caller
// can print it as it is.
#include <stdexcept>
#include <string>

namespace moeflow {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace moeflow
