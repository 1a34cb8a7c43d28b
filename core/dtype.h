#pragma once
// Element types of checkpoint tensors and weights.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace moeflow {

enum class DType : uint8_t { f32, bf16, f16 };

inline size_t dtype_size(DType t) {
  return t == DType::f32 ? 4 : 2;
}

inline std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::bf16:
      return "BF16";
    case DType::f16:
      return "F16";
  }
  return "?";
}

// Parses the dtype spelling safetensors uses ("F32", "BF16", "F16").
inline std::optional<DType> parse_safetensors_dtype(std::string_view s) {
  if (s == "F32") return DType::f32;
  if (s == "BF16") return DType::bf16;
  if (s == "F16") return DType::f16;
  return std::nullopt;
}

}  // namespace moeflow
