#pragma once
// A Hugging Face tokenizer, read from a model folder's tokenizer.json, that encodes and decodes
// exactly as the `tokenizers` library does: byte-level BPE (GPT-2, Llama-3, Qwen2, DeepSeek,
// OLMoE) and SentencePiece-style BPE with byte fallback (Llama-2, Mixtral). Anything else is
// refused with moeflow::Error naming the file and the field. See docs/tokenizer.md.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moeflow {

namespace tokenizer_detail {
struct TokenizerState;
}

class Tokenizer {
 public:
  // Reads `dir`/tokenizer.json.
  static Tokenizer load(const std::filesystem::path& dir);
  // Parses the text of a tokenizer.json; `source` names it in errors.
  static Tokenizer from_json(std::string_view json_text, const std::string& source);

  // Token ids of UTF-8 `text` (refused when not valid UTF-8). With `add_special_tokens`, the
  // post-processor's template applies (e.g. a leading <s> for Llama-2 / Mixtral).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Text of `ids`; unknown ids are left out, as the library does.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;

  // The number of distinct tokens, added tokens included (len(tokenizer) in transformers).
  int64_t vocab_size() const;
  // The id of a token spelled as in the vocabulary ("▁the", "Ġthe", "<|im_end|>").
  std::optional<int32_t> token_id(std::string_view token) const;
  // The token spelled as decode() sees it.
  std::optional<std::string> id_to_token(int32_t id) const;
  // An added token marked special (left out by decode with skip_special_tokens).
  bool is_special(int32_t id) const;

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::shared_ptr<const tokenizer_detail::TokenizerState> state);
  std::shared_ptr<const tokenizer_detail::TokenizerState> state_;
};

}  // namespace moeflow
