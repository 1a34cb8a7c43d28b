// parse_ranges / format_ranges: the `layers` and `experts` syntax, and its refusals with the
// offset of the bad item.
#include "graph/expert_ranges.h"

#include <gtest/gtest.h>

namespace moeflow {
namespace {

std::vector<int64_t> ids(std::string_view text) {
  const auto r = parse_ranges(text);
  const RangeList* list = std::get_if<RangeList>(&r);
  EXPECT_TRUE(list) << text << ": " << std::get<RangeError>(r).message;
  return list ? list->ids : std::vector<int64_t>{};
}

RangeError error_of(std::string_view text) {
  const auto r = parse_ranges(text);
  EXPECT_TRUE(std::holds_alternative<RangeError>(r)) << text << " parsed";
  return std::holds_alternative<RangeError>(r) ? std::get<RangeError>(r) : RangeError{};
}

TEST(ExpertRanges, ParsesIdsAndRanges) {
  EXPECT_EQ(ids("5"), (std::vector<int64_t>{5}));
  EXPECT_EQ(ids("0-3"), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(ids("0-3,8,10-12"), (std::vector<int64_t>{0, 1, 2, 3, 8, 10, 11, 12}));
  EXPECT_EQ(ids(" 0 - 1 , 4 "), (std::vector<int64_t>{0, 1, 4}));
  EXPECT_EQ(ids("7-7"), (std::vector<int64_t>{7}));
}

TEST(ExpertRanges, OverlapsAndOrderAreMerged) {
  EXPECT_EQ(ids("4-6,0-2,5,1"), (std::vector<int64_t>{0, 1, 2, 4, 5, 6}));
}

TEST(ExpertRanges, AllIsAll) {
  const auto r = parse_ranges("all");
  ASSERT_TRUE(std::holds_alternative<RangeList>(r));
  EXPECT_TRUE(std::get<RangeList>(r).all);
  EXPECT_TRUE(std::get<RangeList>(r).ids.empty());
  EXPECT_TRUE(std::get<RangeList>(parse_ranges(" all ")).all);
}

TEST(ExpertRanges, RefusesMalformedWithTheOffsetOfTheBadItem) {
  EXPECT_NE(error_of("").message.find("empty range"), std::string::npos);
  EXPECT_NE(error_of("   ").message.find("empty range"), std::string::npos);

  const RangeError backwards = error_of("0,3-1");
  EXPECT_EQ(backwards.offset, 2u);
  EXPECT_NE(backwards.message.find("range 3-1 is backwards"), std::string::npos);
  EXPECT_NE(backwards.hint.find("1-3"), std::string::npos);

  const RangeError letters = error_of("a-b");
  EXPECT_EQ(letters.offset, 0u);
  EXPECT_NE(letters.message.find("\"a-b\" is not an id or a range A-B"), std::string::npos);

  EXPECT_EQ(error_of("1,,2").offset, 2u);
  EXPECT_NE(error_of("1,").message.find("empty item"), std::string::npos);
  EXPECT_NE(error_of("-1").message.find("not an id"), std::string::npos);
  EXPECT_NE(error_of("1-").message.find("not an id"), std::string::npos);
  EXPECT_NE(error_of("1-2-3").message.find("not an id"), std::string::npos);
  EXPECT_NE(error_of("1.5").message.find("not an id"), std::string::npos);
  EXPECT_NE(error_of("all,3").message.find("\"all\" cannot be combined"), std::string::npos);
}

TEST(ExpertRanges, RefusesHugeIdsBeforeExpandingThem) {
  const RangeError e = error_of("0-4000000000");
  EXPECT_NE(e.message.find("too large"), std::string::npos);
  EXPECT_NE(error_of("99999999999999999999999").message.find("not an id"), std::string::npos);
}

TEST(ExpertRanges, FormatsCompactly) {
  EXPECT_EQ(format_ranges({}), "");
  EXPECT_EQ(format_ranges({3}), "3");
  EXPECT_EQ(format_ranges({0, 1, 2, 3, 8, 10, 11, 12}), "0-3,8,10-12");
  EXPECT_EQ(format_ranges({4, 5}), "4-5");
  EXPECT_EQ(ids(format_ranges({1, 2, 3, 9})), (std::vector<int64_t>{1, 2, 3, 9}));
}

}  // namespace
}  // namespace moeflow
