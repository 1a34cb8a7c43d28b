#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_classes.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

// The regex of the ByteLevel pre-tokenizer (GPT-2's).
const Pattern& gpt2_pattern() {
  static const Pattern p = Pattern::from_json(JsonField(
      nlohmann::json{
          {"Regex",
           R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"}},
      "", "the built-in GPT-2 pattern"));
  return p;
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const JsonField& node) {
  PreTokenizer p;
  if (!node.is_null()) p.add(node);
  return p;
}

void PreTokenizer::add(const JsonField& node) {
  node.require_object();
  const std::string type = node.string("type");
  Step step{};
  if (type == "Sequence") {
    const JsonField list = node.at("pretokenizers");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i));
    return;
  } else if (type == "ByteLevel") {
    step.kind = Step::Kind::byte_level;
    step.add_prefix_space = node.boolean("add_prefix_space", true);
    step.use_regex = node.boolean("use_regex", true);
  } else if (type == "Split") {
    step.kind = Step::Kind::split;
    step.pattern = Pattern::from_json(node.at("pattern"));
    step.behavior = split_behavior_from_json(node.at("behavior"));
    step.invert = node.boolean("invert", false);
  } else if (type == "Digits") {
    step.kind = Step::Kind::digits;
    step.individual_digits = node.boolean("individual_digits", false);
  } else if (type == "Metaspace") {
    step.kind = Step::Kind::metaspace;
    const std::u32string replacement = decode_utf8(node.string("replacement"));
    if (replacement.size() != 1) node.at("replacement").fail("expected one character");
    step.replacement = replacement[0];
    step.split_words = node.boolean("split", true);
    if (node.has("prepend_scheme")) {
      const std::string scheme = node.string("prepend_scheme");
      if (scheme == "always") {
        step.prepend = Step::Prepend::always;
      } else if (scheme == "first") {
        step.prepend = Step::Prepend::first;
      } else if (scheme == "never") {
        step.prepend = Step::Prepend::never;
      } else {
        node.at("prepend_scheme").fail("unsupported prepend_scheme \"" + scheme + "\"");
      }
    } else {
      // Older files say add_prefix_space instead.
      step.prepend =
          node.boolean("add_prefix_space", true) ? Step::Prepend::always : Step::Prepend::never;
    }
  } else {
    node.at("type").fail("unsupported pre-tokenizer \"" + type +
                         "\" (supported: ByteLevel, Split, Digits, Metaspace, Sequence)");
  }
  steps_.push_back(std::move(step));
}

void PreTokenizer::apply(const Step& step, std::vector<Piece>& pieces) {
  std::vector<Piece> out;
  // Splits every piece by spans of its code points.
  auto split_each = [&](auto&& spans_of, SplitBehavior behavior, bool invert) {
    for (Piece& piece : pieces) {
      const std::u32string chars = decode_utf8(piece.text);
      for (const auto& [begin, end] : split_spans(spans_of(chars), behavior, invert)) {
        out.push_back({encode_utf8(std::u32string_view(chars).substr(begin, end - begin)),
                       piece.at_text_start && begin == 0});
      }
    }
    pieces.swap(out);
  };
  switch (step.kind) {
    case Step::Kind::byte_level:
      for (Piece& piece : pieces) {
        if (step.add_prefix_space && piece.text[0] != ' ') piece.text.insert(0, " ");
      }
      if (step.use_regex) {
        split_each([](std::u32string_view s) { return gpt2_pattern().find(s); },
                   SplitBehavior::isolated, false);
      }
      for (Piece& piece : pieces) piece.text = to_byte_level(piece.text);
      return;
    case Step::Kind::split:
      split_each([&](std::u32string_view s) { return step.pattern->find(s); }, step.behavior,
                 step.invert);
      return;
    case Step::Kind::digits:
      split_each(
          [](std::u32string_view s) {
            return character_matches(s,
                                     [](char32_t c) { return in_class(UnicodeClass::number, c); });
          },
          step.individual_digits ? SplitBehavior::isolated : SplitBehavior::contiguous, false);
      return;
    case Step::Kind::metaspace: {
      std::string replacement;
      append_utf8(replacement, step.replacement);
      for (Piece& piece : pieces) {
        std::string text;
        for (char c : piece.text) {
          if (c == ' ') {
            text += replacement;
          } else {
            text += c;
          }
        }
        const bool starts = text.compare(0, replacement.size(), replacement) == 0;
        const bool prepend = step.prepend == Step::Prepend::always ||
                             (step.prepend == Step::Prepend::first && piece.at_text_start);
        if (prepend && !starts) text.insert(0, replacement);
        piece.text = std::move(text);
      }
      if (step.split_words) {
        const char32_t r = step.replacement;
        split_each(
            [r](std::u32string_view s) {
              return character_matches(s, [r](char32_t c) { return c == r; });
            },
            SplitBehavior::merged_with_next, false);
      }
      return;
    }
  }
}

void PreTokenizer::split(const std::string& piece, bool at_text_start,
                         std::vector<std::string>& words) const {
  if (piece.empty()) return;
  std::vector<Piece> pieces = {{piece, at_text_start}};
  for (const Step& step : steps_) apply(step, pieces);
  for (Piece& p : pieces) {
    if (!p.text.empty()) words.push_back(std::move(p.text));
  }
}

}  // namespace moeflow::tokenizer_detail
