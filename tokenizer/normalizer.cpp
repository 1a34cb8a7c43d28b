#include "tokenizer/normalizer.h"

#include "tokenizer/unicode_nfc.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {

Normalizer Normalizer::from_json(const JsonField& node) {
  Normalizer n;
  if (!node.is_null()) n.add(node);
  return n;
}

void Normalizer::add(const JsonField& node) {
  node.require_object();
  const std::string type = node.string("type");
  if (type == "Sequence") {
    const JsonField list = node.at("normalizers");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i));
  } else if (type == "NFC") {
    steps_.push_back({Step::Kind::nfc, "", std::nullopt});
  } else if (type == "Prepend") {
    steps_.push_back({Step::Kind::prepend, node.string("prepend"), std::nullopt});
  } else if (type == "Replace") {
    steps_.push_back(
        {Step::Kind::replace, node.string("content"), Pattern::from_json(node.at("pattern"))});
  } else {
    node.at("type").fail("unsupported normalizer \"" + type +
                         "\" (supported: NFC, Prepend, Replace, Sequence)");
  }
}

std::string Normalizer::apply(std::string_view text) const {
  std::string s(text);
  for (const Step& step : steps_) {
    switch (step.kind) {
      case Step::Kind::nfc:
        s = nfc(s);
        break;
      case Step::Kind::prepend:
        if (!s.empty()) s = step.text + s;  // the library leaves empty text alone
        break;
      case Step::Kind::replace: {
        const std::u32string chars = decode_utf8(s);
        std::string out;
        for (const MatchSpan& span : step.pattern->find(chars)) {
          if (span.is_match) {
            out += step.text;
          } else {
            out +=
                encode_utf8(std::u32string_view(chars).substr(span.begin, span.end - span.begin));
          }
        }
        s = std::move(out);
        break;
      }
    }
  }
  return s;
}

}  // namespace moeflow::tokenizer_detail
