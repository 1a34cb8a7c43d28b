// The split-pattern regex engine: Oniguruma's semantics on the constructs tokenizer patterns use
// (the library-checked cases are in pre_tokenizer_test.cpp), and refusal of everything else.
#include "tokenizer/split_regex.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {
namespace {

// The matched substrings.
std::vector<std::string> matches(std::string_view pattern, std::string_view text) {
  const SplitRegex re(pattern, "test");
  const std::u32string chars = decode_utf8(text);
  std::vector<std::string> out;
  for (const auto& [begin, end] : re.find_all(chars)) {
    out.push_back(encode_utf8(std::u32string_view(chars).substr(begin, end - begin)));
  }
  return out;
}

using Words = std::vector<std::string>;

TEST(SplitRegex, LeftmostFirstAlternationAndGreedyQuantifiers) {
  EXPECT_EQ(matches("a|ab", "ab"), Words({"a"}));
  EXPECT_EQ(matches("ab|a", "ab"), Words({"ab"}));
  EXPECT_EQ(matches(R"(\p{N}{1,3})", "1234567"), Words({"123", "456", "7"}));
  EXPECT_EQ(matches("a+?", "aaa"), Words({"a", "a", "a"}));
  EXPECT_EQ(matches("a{2,}", "a aa aaaa"), Words({"aa", "aaaa"}));
  EXPECT_EQ(matches("x{,2}y", "xxxy"), Words({"xxy"}));
  EXPECT_EQ(matches("a{", "a{"), Words({"a{"}));  // a '{' that starts no quantifier is literal
}

TEST(SplitRegex, LookaheadBacktracksTheWhitespaceRun) {
  // GPT-2's \s+(?!\S): a run of spaces before a word leaves its last space to the word.
  EXPECT_EQ(matches(R"( ?\p{L}+|\s+(?!\S)|\s+)", "a   b"), Words({"a", "  ", " b"}));
  EXPECT_EQ(matches(R"(x(?=y))", "xy xz"), Words({"x"}));
}

TEST(SplitRegex, AnchorsAreLineAnchorsAsInRuby) {
  EXPECT_EQ(matches("^a", "aa\nab"), Words({"a", "a"}));
  EXPECT_EQ(matches(R"(\s+$)", "a  \nb  \n"), Words({"  ", "  \n"}));
  EXPECT_EQ(matches(R"(\Aa|a\z)", "aaa"), Words({"a", "a"}));
  EXPECT_EQ(matches(R"(b\Z)", "ab\n"), Words({"b"}));
}

TEST(SplitRegex, EmptyMatchesAfterAMatchAreSkipped) {
  // (0,0), (1,3), then (3,3) is skipped and (4,4) is kept, as Oniguruma's find_iter does.
  EXPECT_EQ(matches("a*", "baab"), Words({"", "aa", ""}));
}

TEST(SplitRegex, ClassesAndCaseFolding) {
  EXPECT_EQ(matches(R"([^\s\p{L}\p{N}]+)", "a+-b 1!?"), Words({"+-", "!?"}));
  EXPECT_EQ(matches(R"(\p{L}+)", "héllo wörld 你好"), Words({"héllo", "wörld", "你好"}));
  EXPECT_EQ(matches(R"([\x{4E00}-\x{9FFF}]+|\u00e9)", "é中文x"), Words({"é", "中文"}));
  // (?i) folds like Oniguruma: long s and the Kelvin sign too.
  EXPECT_EQ(matches("(?i:'s|'k)", "'S'\xC5\xBF'\xE2\x84\xAA'x"),
            Words({"'S", "'\xC5\xBF", "'\xE2\x84\xAA"}));
  EXPECT_EQ(matches("[-a]+", "a-b"), Words({"a-"}));
  EXPECT_EQ(matches("[]a]+", "]a"), Words({"]a"}));
}

TEST(SplitRegex, RefusesWhatItDoesNotImplement) {
  for (const char* pattern :
       {R"(\d+)", R"(\w)", R"(\bx)", "(?<=a)b", "(?<name>a)", "a++", "[a[b]]", R"((a)\1)",
        "(?i:[a-z])", "(a*)*", "(?m:a)", "*a", "(a", "a)", "[a", R"(\p{Greek})", "(?i:é)"}) {
    EXPECT_THROW(SplitRegex(pattern, "test"), Error) << pattern;
  }
  try {
    SplitRegex(R"(\d+)", "dir/tokenizer.json: field pre_tokenizer.pattern.Regex");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("dir/tokenizer.json: field pre_tokenizer.pattern.Regex: "
                                         "regex \"\\d+\": unsupported escape \\d"),
              0u)
        << e.what();
  }
}

}  // namespace
}  // namespace moeflow::tokenizer_detail
