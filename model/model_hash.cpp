#include "model/model_hash.h"

#include <fstream>
#include <sstream>
#include <string_view>

namespace moeflow {
namespace {

// FNV-1a, 64 bit.
void mix(uint64_t& h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
}

}  // namespace

uint64_t model_hash(const Checkpoint& checkpoint) {
  uint64_t h = 14695981039346656037ull;
  std::ifstream in(checkpoint.dir() / "config.json", std::ios::binary);
  std::stringstream config;
  config << in.rdbuf();
  mix(h, config.str());
  for (const auto& file : checkpoint.files()) {
    for (const auto& t : file.tensors()) {  // sorted by name within a file
      mix(h, t.name);
      mix(h, dtype_name(t.dtype));
      for (int64_t d : t.shape) mix(h, std::to_string(d) + ",");
    }
  }
  return h;
}

}  // namespace moeflow
