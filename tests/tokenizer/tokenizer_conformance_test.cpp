// The tokenizer against the Hugging Face tokenizers library, on the fixtures of
// tests/tokenizer_fixtures/: encode (with and without special tokens), decode (with and without
// skipping them), id lists that cut characters in half, token lookups, len(tokenizer), and the
// stream decoder, whose pieces must add up to decode() and never split a character.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/tokenizer/fixtures.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace moeflow {
namespace {

using test_support::read_json_file;
using test_support::shown;
using test_support::tokenizer_fixture;

class TokenizerConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_fixture(GetParam())));
    cases_ = read_json_file(tokenizer_fixture(GetParam()) / "cases.json");
  }

  // Streams `ids` through a StreamDecoder; checks every piece is whole UTF-8.
  std::string streamed(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
    StreamDecoder stream(*tokenizer_, skip_special_tokens);
    std::string out;
    for (int32_t id : ids) {
      const std::string piece = stream.step(id);
      EXPECT_EQ(tokenizer_detail::find_invalid_utf8(piece), std::string::npos) << shown(piece);
      out += piece;
    }
    const std::string rest = stream.finish();
    EXPECT_EQ(tokenizer_detail::find_invalid_utf8(rest), std::string::npos) << shown(rest);
    return out + rest;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  nlohmann::json cases_;
};

TEST_P(TokenizerConformance, EncodesLikeTheLibrary) {
  ASSERT_GT(cases_["encode"].size(), 80u);
  for (const auto& c : cases_["encode"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tokenizer_->encode(text, true), c["ids"].get<std::vector<int32_t>>()) << shown(text);
    EXPECT_EQ(tokenizer_->encode(text, false), c["ids_no_special"].get<std::vector<int32_t>>())
        << shown(text);
  }
}

TEST_P(TokenizerConformance, DecodesItsEncodingsLikeTheLibrary) {
  for (const auto& c : cases_["encode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer_->decode(ids, false), c["decode"].get<std::string>())
        << shown(c["text"].get<std::string>());
    EXPECT_EQ(tokenizer_->decode(ids, true), c["decode_skip_special"].get<std::string>())
        << shown(c["text"].get<std::string>());
  }
}

TEST_P(TokenizerConformance, DecodesArbitraryIdsLikeTheLibrary) {
  ASSERT_GT(cases_["decode"].size(), 30u);
  for (const auto& c : cases_["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer_->decode(ids, false), c["decode"].get<std::string>()) << c["ids"].dump();
    EXPECT_EQ(tokenizer_->decode(ids, true), c["decode_skip_special"].get<std::string>())
        << c["ids"].dump();
  }
}

TEST_P(TokenizerConformance, StreamedPiecesAddUpToDecode) {
  for (const char* section : {"encode", "decode"}) {
    for (const auto& c : cases_[section]) {
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      for (bool skip : {false, true}) {
        EXPECT_EQ(streamed(ids, skip), tokenizer_->decode(ids, skip))
            << section << " " << c["ids"].dump() << " skip_special_tokens=" << skip;
      }
    }
  }
}

TEST_P(TokenizerConformance, LooksUpTokensLikeTheLibrary) {
  EXPECT_EQ(tokenizer_->vocab_size(), cases_["vocab_size"].get<int64_t>());
  for (const auto& c : cases_["tokens"]) {
    if (c.contains("token")) {
      const std::string token = c["token"];
      const auto id = tokenizer_->token_id(token);
      if (c["id"].is_null()) {
        EXPECT_FALSE(id.has_value()) << shown(token);
      } else {
        EXPECT_EQ(id, std::optional<int32_t>(c["id"].get<int32_t>())) << shown(token);
      }
    } else {
      const auto token = tokenizer_->id_to_token(c["id"].get<int32_t>());
      if (c["id_to_token"].is_null()) {
        EXPECT_FALSE(token.has_value()) << c["id"];
      } else {
        EXPECT_EQ(token, std::optional<std::string>(c["id_to_token"].get<std::string>()))
            << c["id"];
      }
    }
  }
}

TEST_P(TokenizerConformance, KnowsWhichAddedTokensAreSpecial) {
  const nlohmann::json doc = read_json_file(tokenizer_fixture(GetParam()) / "tokenizer.json");
  ASSERT_FALSE(doc["added_tokens"].empty());
  for (const auto& t : doc["added_tokens"]) {
    EXPECT_EQ(tokenizer_->is_special(t["id"]), t["special"].get<bool>()) << t.dump();
  }
  EXPECT_FALSE(tokenizer_->is_special(5));  // an ordinary vocabulary entry
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerConformance,
                         ::testing::ValuesIn(test_support::tokenizer_variants()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moeflow
