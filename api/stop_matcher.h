#pragma once
// Stop sequences over streamed text: holds back just enough text that a stop string split across
// tokens is still found, and cuts the output where the first stop string begins.
#include <string>
#include <vector>

namespace moeflow::api {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds generated text; returns the text that is now safe to emit. After a stop string is
  // found, stopped() is true and nothing more is emitted.
  std::string push(const std::string& text);
  // The held-back text, at the end of generation.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  size_t hold_ = 0;  // longest stop length - 1
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace moeflow::api
