// Where added replicas go, on loads worked out by hand.
#include "scaling/replica_placement.h"

#include <gtest/gtest.h>

namespace moeflow {
namespace {

ScalingAction add(int64_t layer, int64_t expert) {
  return {ScalingAction::Kind::add, layer, expert, "hot", ""};
}

// Two nodes, one layer of four experts: node 0 holds 0-1, node 1 holds 2-3.
PlacementLoad two_nodes(std::vector<double> tokens) {
  PlacementLoad in;
  in.nodes = 2;
  in.holders = {{{0}, {0}, {1}, {1}}};
  in.tokens = {std::move(tokens)};
  return in;
}

TEST(ReplicaPlacement, NodeLoadsSplitAnExpertOverItsHolders) {
  PlacementLoad in = two_nodes({80, 20, 10, 10});
  EXPECT_EQ(node_loads(in), (std::vector<double>{100, 20}));
  in.holders[0][0] = {0, 1};  // expert 0 on both: 40 each
  EXPECT_EQ(node_loads(in), (std::vector<double>{60, 60}));
}

TEST(ReplicaPlacement, AHotExpertGoesToTheNodeThatDoesNotHoldIt) {
  // Node 0 carries 100 tokens, node 1 20: expert 0's replica goes to node 1, whatever its load.
  EXPECT_EQ(place_replicas({add(0, 0)}, two_nodes({80, 20, 10, 10})), (std::vector<int>{1}));
  // Expert 2 (held by node 1) can only go to node 0.
  EXPECT_EQ(place_replicas({add(0, 2)}, two_nodes({80, 20, 10, 10})), (std::vector<int>{0}));
}

TEST(ReplicaPlacement, ABatchSpreadsOverNodesAsLoadsChange) {
  // Three nodes; node 0 holds experts 0-1 (60 + 60 tokens), nodes 1 and 2 one cold expert each.
  PlacementLoad in;
  in.nodes = 3;
  in.holders = {{{0}, {0}, {1}, {2}}};
  in.tokens = {{60, 60, 10, 12}};
  // Loads 120 / 10 / 12. Expert 0 -> node 1 (10): loads 90 / 40 / 12. Expert 1 -> node 2 (12):
  // loads 60 / 40 / 42.
  EXPECT_EQ(place_replicas({add(0, 0), add(0, 1)}, in), (std::vector<int>{1, 2}));
}

TEST(ReplicaPlacement, ANodeWithoutRoomIsPassedOver) {
  // Three nodes as above; node 1 (the least loaded) has room for none, node 2 for one.
  PlacementLoad in;
  in.nodes = 3;
  in.holders = {{{0}, {0}, {1}, {2}}};
  in.tokens = {{60, 60, 10, 12}};
  in.room = {5, 0, 1};
  EXPECT_EQ(place_replicas({add(0, 0), add(0, 1)}, in), (std::vector<int>{2, -1}));
}

TEST(ReplicaPlacement, NoCandidateAndOtherKinds) {
  PlacementLoad in = two_nodes({80, 20, 10, 10});
  in.holders[0][0] = {0, 1};
  ScalingAction retire{ScalingAction::Kind::retire, 0, 1, "cold", ""};
  EXPECT_EQ(place_replicas({add(0, 0), retire}, in), (std::vector<int>{-1, -1}));
  // The second replica of one expert in a batch sees the first.
  EXPECT_EQ(place_replicas({add(0, 3), add(0, 3)}, two_nodes({0, 0, 0, 90})),
            (std::vector<int>{0, -1}));
}

}  // namespace
}  // namespace moeflow
