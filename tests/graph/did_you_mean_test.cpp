// edit_distance / closest_match: the typo suggestions behind "did you mean".
#include "graph/did_you_mean.h"

#include <gtest/gtest.h>

namespace moeflow {
namespace {

TEST(DidYouMean, EditDistanceCountsASwapOnce) {
  EXPECT_EQ(edit_distance("experts", "experts"), 0u);
  EXPECT_EQ(edit_distance("exprets", "experts"), 1u);
  EXPECT_EQ(edit_distance("expert", "experts"), 1u);
  EXPECT_EQ(edit_distance("Experts", "experts"), 0u);
  EXPECT_EQ(edit_distance("", "node"), 4u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(DidYouMean, SuggestsOnlyLikelyTypos) {
  const std::vector<std::string> keys = {"node", "layers", "experts", "device"};
  EXPECT_EQ(closest_match("exprets", keys), "experts");
  EXPECT_EQ(closest_match("layer", keys), "layers");
  EXPECT_EQ(closest_match("nodes", keys), "node");
  EXPECT_EQ(closest_match("replicas", keys), "");
  EXPECT_EQ(closest_match("a", {"b", "c"}), "");  // one letter is no typo of another
  EXPECT_EQ(closest_match("experts-x", {"router", "experts-a", "experts-b"}), "experts-a");
}

}  // namespace
}  // namespace moeflow
