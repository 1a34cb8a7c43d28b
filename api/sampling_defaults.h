#pragma once
// The graph's [sampling] defaults, which the HTTP gateway applies to requests that leave a
// parameter out. Read by every request, replaced live when an edited graph is applied; a request
// keeps the defaults it started with.
#include <mutex>

#include "graph/graph.h"

namespace moeflow::api {

class SamplingDefaults {
 public:
  explicit SamplingDefaults(const SamplingSpec& spec = {}) : spec_(spec) {}

  SamplingSpec get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return spec_;
  }
  void set(const SamplingSpec& spec) {
    std::lock_guard<std::mutex> lock(mutex_);
    spec_ = spec;
  }

 private:
  mutable std::mutex mutex_;
  SamplingSpec spec_;
};

}  // namespace moeflow::api
