#pragma once
// How far a computed vector is from its reference, for tests that compare two implementations
// (a GPU kernel against the CPU path, bf16 against fp32).
#include <cmath>
#include <vector>

namespace moeflow::test_support {

// ||a - ref|| / ||ref|| (L2, in double); infinity when `a` has a NaN, or when `ref` is all zeros
// and `a` is not (no relative error is small then).
inline double relative_error(const std::vector<float>& a, const std::vector<float>& ref) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    diff += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  if (norm > 0.0) return std::sqrt(diff / norm);
  return diff > 0.0 ? INFINITY : 0.0;
}

}  // namespace moeflow::test_support
