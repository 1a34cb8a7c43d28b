// UTF-8 checks: well-formed text passes; overlong forms, surrogates, out-of-range code points and
// cut sequences do not; sanitising cuts at a character boundary.
#include "transport/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace moeflow::transport {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
  for (const char* s :
       {"", "plain ascii", "größe", "✓ done", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"})
    EXPECT_TRUE(is_valid_utf8(s)) << s;
}

TEST(Utf8, RefusesMalformedSequences) {
  for (const char* s :
       {"\x80", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\xaf",
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "ok \xe2\x82", "\xe2\x28\xa1"})
    EXPECT_FALSE(is_valid_utf8(s)) << testing::PrintToString(std::string(s));
}

TEST(Utf8, SanitiseReplacesBadBytesAndCutsAtBoundaries) {
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b",
                          10),
            "a?b");
  EXPECT_EQ(sanitize_utf8("abé", 3), "ab");  // é is two bytes: it would straddle the limit
  EXPECT_EQ(sanitize_utf8("abé", 4), "abé");
  EXPECT_EQ(sanitize_utf8("", 4), "");
}

}  // namespace
}  // namespace moeflow::transport
