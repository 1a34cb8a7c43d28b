// NFC against the Hugging Face library's NFC normalizer: every code point with a canonical
// decomposition, composed and decomposed, and random runs of combining marks and Hangul jamo.
#include "tokenizer/unicode_nfc.h"

#include <gtest/gtest.h>

#include "tests/tokenizer/fixtures.h"

namespace moeflow::tokenizer_detail {
namespace {

TEST(UnicodeNfc, NormalizesLikeTheLibrary) {
  const nlohmann::json cases =
      test_support::read_json_file(test_support::tokenizer_fixture("nfc_cases.json"));
  ASSERT_GT(cases.size(), 300u);
  for (const auto& c : cases) {
    const std::string text = c[0];
    EXPECT_EQ(nfc(text), c[1].get<std::string>()) << test_support::shown(text);
  }
}

TEST(UnicodeNfc, ComposesAndReorders) {
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                                 // e + acute -> é
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                              // Angstrom sign -> Å
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // jamo -> 각
  EXPECT_EQ(nfc("a\xCC\xA3\xCC\x81"), nfc("a\xCC\x81\xCC\xA3"));  // marks in canonical order
  EXPECT_EQ(nfc("plain"), "plain");
}

}  // namespace
}  // namespace moeflow::tokenizer_detail
