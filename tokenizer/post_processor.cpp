#include "tokenizer/post_processor.h"

namespace moeflow::tokenizer_detail {

PostProcessor PostProcessor::from_json(const JsonField& node) {
  PostProcessor p;
  if (!node.is_null()) p.add(node);
  return p;
}

void PostProcessor::add(const JsonField& node) {
  node.require_object();
  const std::string type = node.string("type");
  if (type == "Sequence") {
    const JsonField list = node.at("processors");
    for (size_t i = 0; i < list.array_size(); ++i) add(list.at(i));
    return;
  }
  if (type == "ByteLevel") return;  // only trims offsets, which encode() does not return
  if (type != "TemplateProcessing") {
    node.at("type").fail("unsupported post-processor \"" + type +
                         "\" (supported: TemplateProcessing, ByteLevel, Sequence)");
  }
  if (has_template_) node.fail("more than one TemplateProcessing");
  has_template_ = true;
  const JsonField single = node.at("single");
  const JsonField specials = node.at("special_tokens");
  bool seen_sequence = false;
  for (size_t i = 0; i < single.array_size(); ++i) {
    const JsonField piece = single.at(i);
    if (piece.has("Sequence")) {
      const std::string which = piece.at("Sequence").string("id");
      if (which != "A") piece.fail("a single-sequence template can only hold $A, not $" + which);
      if (seen_sequence) piece.fail("$A appears twice");
      seen_sequence = true;
    } else if (piece.has("SpecialToken")) {
      const std::string name = piece.at("SpecialToken").string("id");
      const JsonField special = specials.at(name);
      if (special.is_null()) piece.fail("special token \"" + name + "\" is not in special_tokens");
      const JsonField ids = special.at("ids");
      for (size_t k = 0; k < ids.array_size(); ++k) {
        const nlohmann::json& id = ids.value()[k];
        if (!id.is_number_integer()) ids.fail("expected integers, got " + ids.value().dump());
        (seen_sequence ? after_ : before_).push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else {
      piece.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  if (!seen_sequence) single.fail("the template has no $A");
}

void PostProcessor::add_special_tokens(std::vector<int32_t>& ids) const {
  if (before_.empty() && after_.empty()) return;
  ids.insert(ids.begin(), before_.begin(), before_.end());
  ids.insert(ids.end(), after_.begin(), after_.end());
}

}  // namespace moeflow::tokenizer_detail
