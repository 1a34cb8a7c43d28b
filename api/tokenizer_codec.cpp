#include "api/tokenizer_codec.h"

#include <optional>

#include "api/api_error.h"
#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace moeflow::api {
namespace {

class TokenizerStream final : public TextStream {
 public:
  explicit TokenizerStream(const Tokenizer& t) : decoder_(t, /*skip_special_tokens=*/true) {}
  std::string push(int32_t token) override { return decoder_.step(token); }
  std::string finish() override { return decoder_.finish(); }

 private:
  StreamDecoder decoder_;
};

class TokenizerCodec final : public TextCodec {
 public:
  explicit TokenizerCodec(const std::filesystem::path& dir) : tokenizer_(Tokenizer::load(dir)) {
    try {
      chat_ = ChatTemplate::load(dir);
    } catch (const Error& e) {
      chat_error_ = e.what();  // completions still work; chat answers with this reason
    }
  }

  std::vector<int32_t> encode_prompt(const std::string& text) const override {
    try {
      return tokenizer_.encode(text, /*add_special_tokens=*/true);
    } catch (const Error& e) {
      throw invalid_request(e.what(), "prompt");
    }
  }

  std::vector<int32_t> encode_chat(const std::vector<ChatTurn>& messages) const override {
    if (!chat_)
      throw invalid_request("this model has no supported chat template: " + chat_error_,
                            "messages");
    std::vector<ChatMessage> turns;
    for (const auto& m : messages) turns.push_back({m.role, m.content});
    try {
      // The template places BOS itself, so no special tokens are added on encoding.
      return tokenizer_.encode(apply_chat_template(*chat_, turns, true), false);
    } catch (const Error& e) {
      throw invalid_request(e.what(), "messages");
    }
  }

  std::unique_ptr<TextStream> decoder() const override {
    return std::make_unique<TokenizerStream>(tokenizer_);
  }

 private:
  Tokenizer tokenizer_;
  std::optional<ChatTemplate> chat_;
  std::string chat_error_;
};

}  // namespace

std::unique_ptr<TextCodec> make_tokenizer_codec(const std::filesystem::path& model_dir) {
  return std::make_unique<TokenizerCodec>(model_dir);
}

}  // namespace moeflow::api
