#pragma once
// The `added_tokens` of tokenizer.json (special tokens such as <s> or <|im_end|>, and any other
// added token): they are cut out of the text before normalization and pre-tokenization, found
// leftmost-longest, with their single_word / lstrip / rstrip / normalized flags honoured as the
// tokenizers crate does.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe_model.h"
#include "tokenizer/json_field.h"
#include "tokenizer/normalizer.h"

namespace moeflow::tokenizer_detail {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
  // What decode() shows for it: the content, normalized when the token is `normalized`.
  std::string decode_text;
};

class AddedVocabulary {
 public:
  // `list` is the "added_tokens" node.
  static AddedVocabulary from_json(const JsonField& list, const Normalizer& normalizer);

  // A stretch of text: an added token (id >= 0) or plain text [begin, end) to tokenize.
  struct Segment {
    int32_t id;
    size_t begin, end;
  };
  // Cuts the tokens whose `normalized` flag equals `normalized` out of `text`.
  std::vector<Segment> split(std::string_view text, bool normalized) const;

  const AddedToken* find(int32_t id) const;
  std::optional<int32_t> id(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over the token texts, for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;
      int32_t token = -1;  // index into tokens_ when a token ends here
    };
    std::vector<Node> nodes = {Node{}};
    bool first_byte[256] = {};
    void insert(std::string_view text, int32_t token);
    // The longest token starting at `at`: (index into tokens_, length), or index -1.
    std::pair<int32_t, size_t> longest(std::string_view text, size_t at) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  Vocabulary by_content_;
  Trie raw_, normalized_;  // normalized_ holds the normalized texts of `normalized` tokens
};

}  // namespace moeflow::tokenizer_detail
