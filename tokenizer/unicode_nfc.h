#pragma once
// Unicode Normalization Form C, for the NFC normalizer of Qwen2 and GPT-NeoX (OLMoE) tokenizers.
#include <string>
#include <string_view>

namespace moeflow::tokenizer_detail {

// NFC of valid UTF-8 text.
std::string nfc(std::string_view text);

}  // namespace moeflow::tokenizer_detail
