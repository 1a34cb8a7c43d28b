#pragma once
// Human-readable numbers for logs and tables.
#include <cstdint>
#include <string>

namespace moeflow {

std::string format_bytes(double bytes);  // "1.50 GiB"
std::string format_count(double n);      // "46.70 B", "12.3 M"

}  // namespace moeflow
