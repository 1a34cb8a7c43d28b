#pragma once
// What every benchmark prints and times with.
#include <string>

namespace moeflow::bench {

double now_seconds();     // steady clock
std::string cpu_model();  // from /proc/cpuinfo, for the table headers

}  // namespace moeflow::bench
