#include "tokenizer/added_vocabulary.h"

#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

// The start of the character that ends at byte `end` of valid UTF-8, and that character.
size_t char_start(std::string_view s, size_t end) {
  size_t begin = end - 1;
  while (begin > 0 && (static_cast<uint8_t>(s[begin]) & 0xC0) == 0x80) --begin;
  return begin;
}
char32_t char_before(std::string_view s, size_t end) {
  const size_t begin = char_start(s, end);
  return decode_utf8(s.substr(begin, end - begin))[0];
}
char32_t char_at(std::string_view s, size_t at) {
  return decode_utf8(s.substr(at, utf8_length(s, at)))[0];
}

// Rust's char::is_alphanumeric, closely enough for single_word: letters, marks and numbers.
bool is_word_char(char32_t c) {
  return in_class(UnicodeClass::letter, c) || in_class(UnicodeClass::number, c) ||
         in_class(UnicodeClass::mark, c);
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view text, int32_t token) {
  int32_t node = 0;
  for (char ch : text) {
    const uint8_t b = static_cast<uint8_t>(ch);
    int32_t child = -1;
    for (const auto& [byte, index] : nodes[node].children) {
      if (byte == b) child = index;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes.size());
      nodes[node].children.push_back({b, child});
      nodes.emplace_back();
    }
    node = child;
  }
  // The first of two tokens with the same text wins, like the crate's pattern order.
  if (nodes[node].token < 0) nodes[node].token = token;
  first_byte[static_cast<uint8_t>(text[0])] = true;
}

std::pair<int32_t, size_t> AddedVocabulary::Trie::longest(std::string_view text, size_t at) const {
  std::pair<int32_t, size_t> best = {-1, 0};
  int32_t node = 0;
  for (size_t i = at; i < text.size(); ++i) {
    int32_t child = -1;
    for (const auto& [byte, index] : nodes[node].children) {
      if (byte == static_cast<uint8_t>(text[i])) child = index;
    }
    if (child < 0) break;
    node = child;
    if (nodes[node].token >= 0) best = {nodes[node].token, i + 1 - at};
  }
  return best;
}

AddedVocabulary AddedVocabulary::from_json(const JsonField& list, const Normalizer& normalizer) {
  AddedVocabulary v;
  for (size_t i = 0; i < list.array_size(); ++i) {
    const JsonField entry = list.at(i);
    entry.require_object();
    AddedToken t;
    const int64_t id = entry.integer("id");
    if (id < 0 || id > INT32_MAX) entry.at("id").fail("out of range: " + std::to_string(id));
    t.id = static_cast<int32_t>(id);
    t.content = entry.string("content");
    t.single_word = entry.boolean("single_word", false);
    t.lstrip = entry.boolean("lstrip", false);
    t.rstrip = entry.boolean("rstrip", false);
    t.normalized = entry.boolean("normalized", true);
    t.special = entry.boolean("special", false);
    t.decode_text = t.normalized ? normalizer.apply(t.content) : t.content;
    v.by_id_[t.id] = v.tokens_.size();
    v.by_content_.emplace(t.content, t.id);
    v.tokens_.push_back(std::move(t));
  }
  for (size_t i = 0; i < v.tokens_.size(); ++i) {
    const AddedToken& t = v.tokens_[i];
    if (t.content.empty()) continue;
    if (t.normalized) {
      if (!t.decode_text.empty()) v.normalized_.insert(t.decode_text, static_cast<int32_t>(i));
    } else {
      v.raw_.insert(t.content, static_cast<int32_t>(i));
    }
  }
  return v;
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::id(std::string_view content) const {
  const auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

// AddedVocabulary::find_matches of the crate.
std::vector<AddedVocabulary::Segment> AddedVocabulary::split(std::string_view text,
                                                             bool normalized) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  std::vector<Segment> out;
  size_t done = 0;  // text before this is in `out`
  size_t at = 0;
  while (at < text.size()) {
    if (!trie.first_byte[static_cast<uint8_t>(text[at])]) {
      ++at;
      continue;
    }
    const auto [index, length] = trie.longest(text, at);
    if (index < 0) {
      ++at;
      continue;
    }
    const AddedToken& t = tokens_[static_cast<size_t>(index)];
    size_t begin = at, end = at + length;
    at = end;  // the next match starts after this one, whether or not this one is kept
    if (t.single_word) {
      const bool word_before = begin > 0 && is_word_char(char_before(text, begin));
      const bool word_after = end < text.size() && is_word_char(char_at(text, end));
      if (word_before || word_after) continue;
    }
    if (t.lstrip) {
      while (begin > done && is_white_space(char_before(text, begin))) {
        begin = char_start(text, begin);
      }
    }
    if (t.rstrip) {
      while (end < text.size() && is_white_space(char_at(text, end))) end += utf8_length(text, end);
    }
    if (done < begin) out.push_back({-1, done, begin});
    out.push_back({t.id, begin, end});
    done = end;
  }
  if (done < text.size()) out.push_back({-1, done, text.size()});
  return out;
}

}  // namespace moeflow::tokenizer_detail
