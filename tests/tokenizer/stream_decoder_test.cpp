// StreamDecoder: text comes out only as whole characters, a byte-fallback run is released when
// it ends, finish() flushes and resets; the fixtures check that pieces add up to decode().
#include "tokenizer/stream_decoder.h"

#include <gtest/gtest.h>

#include "tests/tokenizer/fixtures.h"
#include "tokenizer/tokenizer.h"

namespace moeflow {
namespace {

using test_support::tokenizer_fixture;

std::vector<std::string> pieces(StreamDecoder& stream, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(stream.step(id));
  out.push_back(stream.finish());
  return out;
}

TEST(StreamDecoder, ByteLevelHoldsBackAnIncompleteCharacter) {
  const Tokenizer tok = Tokenizer::load(tokenizer_fixture("qwen2"));
  // 👋 is F0 9F 91 8B: four byte-level characters ðŁĳĭ, one token each here.
  std::vector<int32_t> ids;
  for (const char* t : {"\xC3\xB0", "\xC5\x81", "\xC4\xB3", "\xC4\xAD"})
    ids.push_back(*tok.token_id(t));
  ids.push_back(*tok.token_id("!"));
  StreamDecoder stream(tok, true);
  EXPECT_EQ(pieces(stream, ids),
            (std::vector<std::string>{"", "", "", "\xF0\x9F\x91\x8B", "!", ""}));
  // Cut short, the stream ends with U+FFFD, as decode() does.
  EXPECT_EQ(pieces(stream, {ids[0], ids[1]}), (std::vector<std::string>{"", "", "\xEF\xBF\xBD"}));
  EXPECT_EQ(tok.decode({ids[0], ids[1]}, true), "\xEF\xBF\xBD");
}

TEST(StreamDecoder, ByteFallbackReleasesARunWhenItEnds) {
  const Tokenizer tok = Tokenizer::load(tokenizer_fixture("mixtral"));
  const int32_t e4 = *tok.token_id("<0xE4>"), bd = *tok.token_id("<0xBD>"),
                a0 = *tok.token_id("<0xA0>");
  const int32_t a = *tok.token_id("<0x41>");
  const std::vector<int32_t> hello = tok.encode("hello", false);
  StreamDecoder stream(tok, true);
  // 你 then a word: the run is complete only when the word starts.
  std::vector<int32_t> ids = {e4, bd, a0};
  ids.insert(ids.end(), hello.begin(), hello.end());
  std::string text;
  for (const std::string& p : pieces(stream, ids)) text += p;
  EXPECT_EQ(text, "\xE4\xBD\xA0 hello");
  EXPECT_EQ(text, tok.decode(ids, true));
  // "A" then a lone E4: the library turns the whole run into U+FFFD, so "A" must not leak early.
  EXPECT_EQ(stream.step(a), "");
  EXPECT_EQ(stream.step(e4), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode({a, e4}, true), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(StreamDecoder, SkipsSpecialTokensAndStripsTheLeadingSpaceOnce) {
  const Tokenizer tok = Tokenizer::load(tokenizer_fixture("mixtral"));
  const std::vector<int32_t> ids = tok.encode("Hi there", true);  // <s> ▁Hi ▁there
  StreamDecoder skipping(tok, true), keeping(tok, false);
  std::string a, b;
  for (int32_t id : ids) {
    a += skipping.step(id);
    b += keeping.step(id);
  }
  a += skipping.finish();
  b += keeping.finish();
  EXPECT_EQ(a, "Hi there");
  EXPECT_EQ(b, "<s> Hi there");
}

}  // namespace
}  // namespace moeflow
