// UTF-8 helpers: validation, and lossy decoding as Rust's String::from_utf8_lossy does it, whole
// and streamed.
#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace moeflow::tokenizer_detail {
namespace {

std::string lossy(std::string_view bytes) {
  std::string out;
  append_utf8_lossy(out, bytes, true);
  return out;
}

const std::string k_bad(k_replacement_character);

TEST(TokenizerUtf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("h\xC3\xA9llo \xF0\x9F\x91\x8B"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2u);             // truncated
  EXPECT_EQ(find_invalid_utf8("ab\xC0\x80"), 2u);         // overlong
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);       // surrogate
  EXPECT_EQ(find_invalid_utf8("x\xF4\x90\x80\x80"), 1u);  // above U+10FFFF
}

TEST(TokenizerUtf8, LossyReplacesEachMaximalInvalidSubpart) {
  EXPECT_EQ(lossy("a\xF0\x9F\x91"), "a" + k_bad);           // one truncated sequence
  EXPECT_EQ(lossy("\xE0\x80\x41"), k_bad + k_bad + "A");    // E0 needs A0..BF next
  EXPECT_EQ(lossy("\xED\xA0\x80"), k_bad + k_bad + k_bad);  // surrogates
  EXPECT_EQ(lossy("\xF0\x9F\x41"), k_bad + "A");            // cut by an ASCII byte
  EXPECT_EQ(lossy("\xFF\xFE"), k_bad + k_bad);
  EXPECT_EQ(lossy("\xF0\x9F\x91\x8B"), "\xF0\x9F\x91\x8B");
}

TEST(TokenizerUtf8, StreamedLossyHoldsBackOnlyWhatMoreBytesCouldComplete) {
  std::string out;
  EXPECT_EQ(append_utf8_lossy(out, "ok\xF0\x9F", false), 2u);  // the emoji may continue
  EXPECT_EQ(out, "ok");
  out.clear();
  EXPECT_EQ(append_utf8_lossy(out, "\xF0\x9F\x41", false), 3u);  // it cannot any more
  EXPECT_EQ(out, k_bad + "A");
}

}  // namespace
}  // namespace moeflow::tokenizer_detail
