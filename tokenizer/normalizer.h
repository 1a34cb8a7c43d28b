#pragma once
// The `normalizer` of tokenizer.json, applied to each piece of text between added tokens.
// Supported: NFC (Qwen2, GPT-NeoX/OLMoE), Prepend and Replace (the SentencePiece-style form of
// Llama-2 / Mixtral: Prepend("▁") + Replace(" ", "▁")), and Sequence of these. Other
// normalizers (NFD, NFKC, Lowercase, BertNormalizer, Precompiled, ...) are refused.
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_field.h"
#include "tokenizer/split_pattern.h"

namespace moeflow::tokenizer_detail {

class Normalizer {
 public:
  // A null node is no normalizer.
  static Normalizer from_json(const JsonField& node);

  std::string apply(std::string_view text) const;
  bool empty() const { return steps_.empty(); }

 private:
  struct Step {
    enum class Kind { nfc, prepend, replace } kind;
    std::string text;                // prepend: what to prepend; replace: the replacement
    std::optional<Pattern> pattern;  // replace
  };
  void add(const JsonField& node);

  std::vector<Step> steps_;
};

}  // namespace moeflow::tokenizer_detail
