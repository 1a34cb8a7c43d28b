#include "tokenizer/stream_decoder.h"

#include "tokenizer/tokenizer_state.h"

namespace moeflow {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : state_(tokenizer.state_),
      skip_special_tokens_(skip_special_tokens),
      run_(std::make_unique<tokenizer_detail::DecodeRun>(state_->decoder)) {}

StreamDecoder::~StreamDecoder() = default;
StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
StreamDecoder& StreamDecoder::operator=(StreamDecoder&&) noexcept = default;

std::string StreamDecoder::step(int32_t id) {
  std::string out;
  if (const std::string* token = state_->decode_token(id, skip_special_tokens_)) {
    run_->push(*token, out);
  }
  return out;
}

std::string StreamDecoder::finish() {
  std::string out;
  run_->finish(out);
  return out;
}

}  // namespace moeflow
