#pragma once
// The BPE `model` of tokenizer.json: vocabulary, ranked merges, unknown-token and byte-fallback
// handling, `ignore_merges`. A word is split into characters and the lowest-ranked adjacent pair
// is merged until none is left, exactly as the tokenizers crate does (same tie-breaking).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_field.h"

namespace moeflow::tokenizer_detail {

// Lets unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocabulary = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // `model` is the "model" node; refuses anything but type BPE (WordPiece, Unigram, ...).
  static BpeModel from_json(const JsonField& model);

  // Appends the ids of one word.
  void tokenize(std::string_view word, std::vector<int32_t>& ids) const;

  std::optional<int32_t> id(std::string_view token) const;
  const std::string* token(int32_t id) const;  // nullptr when the id is not in the vocabulary
  const Vocabulary& vocabulary() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank, id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  void merge_all(std::vector<int32_t>& symbols) const;

  Vocabulary vocab_;
  std::vector<const std::string*> tokens_;  // by id; nullptr for gaps
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  int32_t byte_ids_[256];  // <0xNN> tokens for byte fallback, -1 when absent
};

}  // namespace moeflow::tokenizer_detail
