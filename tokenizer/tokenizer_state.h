#pragma once
// What a loaded tokenizer.json becomes: the pipeline stages in the order the Hugging Face library
// runs them. Shared (immutable) between a Tokenizer, its copies and its StreamDecoders.
#include <string>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace moeflow::tokenizer_detail {

struct TokenizerState {
  std::string source;  // the file, for errors
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedVocabulary added;
  PostProcessor post_processor;
  Decoder decoder;
  int64_t vocab_size = 0;

  // The string decode() feeds to the decoder for `id`, or nullptr to leave it out (an unknown
  // id, or a special token when skipping them).
  const std::string* decode_token(int32_t id, bool skip_special_tokens) const;
};

}  // namespace moeflow::tokenizer_detail
