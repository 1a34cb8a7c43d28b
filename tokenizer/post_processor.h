#pragma once
// The `post_processor` of tokenizer.json, which decides what encode(text, add_special_tokens =
// true) adds around the ids: TemplateProcessing's single-sequence template (e.g. "<s> $A"),
// ByteLevel (adds nothing) and Sequence of these. RobertaProcessing, BertProcessing and others
// are refused.
#include <cstdint>
#include <vector>

#include "tokenizer/json_field.h"

namespace moeflow::tokenizer_detail {

class PostProcessor {
 public:
  // A null node adds nothing.
  static PostProcessor from_json(const JsonField& node);

  void add_special_tokens(std::vector<int32_t>& ids) const;

 private:
  void add(const JsonField& node);

  std::vector<int32_t> before_, after_;  // ids around the sequence
  bool has_template_ = false;
};

}  // namespace moeflow::tokenizer_detail
