// A node's side of the NCCL group's control plane, with a fake rank factory below NCCL: which
// ranks it forms, when it answers and what, and that a newer generation aborts the old
// communicators before any new one starts forming.
#include "transport/gpu_group_participant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/transport/gpu_group_test_util.h"

namespace moeflow::transport {
namespace {

using test_util::EventList;
using test_util::FakeRankFactory;

// 3 ranks on 2 nodes: router cuda:0, experts-a cuda:0 and cuda:1.
GpuGroup group_of(uint64_t generation, std::vector<GpuGroupMember> members = {
                                           {"router", 0}, {"experts-a", 0}, {"experts-a", 1}}) {
  GpuGroup g;
  g.generation = generation;
  g.unique_id[0] = static_cast<uint8_t>(generation);
  g.members = std::move(members);
  return g;
}

struct GpuGroupParticipantTest : ::testing::Test {
  EventList events;
  FakeRankFactory factory{events};
  std::vector<std::string> log;
  GpuGroupParticipant node{"experts-a", factory,
                           [this](const std::string& line) { log.push_back(line); }};

  std::optional<GpuGroupReady> form(uint64_t generation, int rank, int32_t device) {
    return node.rank_formed(generation, rank, factory.rank_for(generation, rank, device));
  }
  size_t index_of(const std::string& event) const {
    return static_cast<size_t>(std::find(events.begin(), events.end(), event) - events.begin());
  }
  bool logged(const std::string& part) const {
    return std::any_of(log.begin(), log.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
};

TEST_F(GpuGroupParticipantTest, FormsEachLocalRankAndAnswersOnceAllFormed) {
  EXPECT_FALSE(node.on_group(group_of(1)));
  EXPECT_EQ(events, (EventList{"start g1 rank 1 cuda:0", "start g1 rank 2 cuda:1"}));
  EXPECT_EQ(node.state(), GpuGroupState::forming);
  EXPECT_EQ(node.generation(), 1u);
  EXPECT_FALSE(form(1, 2, 1));          // in any order
  EXPECT_EQ(node.rank_on(1), nullptr);  // not before every local rank formed
  const auto answer = form(1, 1, 0);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->generation, 1u);
  EXPECT_EQ(answer->node, "experts-a");
  EXPECT_EQ(answer->devices, (std::vector<GpuDeviceOutcome>{{0, ""}, {1, ""}}));
  EXPECT_TRUE(answer->all_formed());
  EXPECT_EQ(node.state(), GpuGroupState::formed);
  EXPECT_NE(node.rank_on(0), nullptr);
  EXPECT_NE(node.rank_on(1), nullptr);
  EXPECT_EQ(node.rank_on(2), nullptr);
  EXPECT_TRUE(logged("every rank of experts-a formed"));
}

TEST_F(GpuGroupParticipantTest, AFailingRankIsAnsweredAtOnceAndTheOthersAreAborted) {
  node.on_group(group_of(1));
  EXPECT_FALSE(form(1, 1, 0));
  const auto answer = node.rank_failed(1, 2, "NCCL rank 2 of 3 on cuda:1: timed out");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->devices,
            (std::vector<GpuDeviceOutcome>{{0, ""}, {1, "NCCL rank 2 of 3 on cuda:1: timed out"}}));
  EXPECT_EQ(node.state(), GpuGroupState::failed);
  // The group cannot work without cuda:1: the formed cuda:0 is aborted.
  EXPECT_EQ(events.back(), "abort g1 rank 1 cuda:0");
  EXPECT_EQ(node.rank_on(0), nullptr);
  EXPECT_TRUE(logged("failed experts-a cuda:1 (rank 2 of 3, generation 1)"));
}

TEST_F(GpuGroupParticipantTest, RanksStillFormingWhenOneFailsAreReportedAndDroppedLater) {
  node.on_group(group_of(1));
  const auto answer = node.rank_failed(1, 1, "out of memory");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->devices,
            (std::vector<GpuDeviceOutcome>{{0, "out of memory"},
                                           {1, "abandoned while forming: cuda:0 failed"}}));
  // The abandoned rank forms after all: aborted at once, not kept, no second answer.
  EXPECT_FALSE(form(1, 2, 1));
  EXPECT_EQ(events.back(), "abort g1 rank 2 cuda:1");
  EXPECT_TRUE(logged("formed for rank 2 of generation 1 dropped: the generation is failed"));
  EXPECT_FALSE(node.rank_failed(1, 2, "late"));
  // An empty reason still says something.
  GpuGroupParticipant other{"experts-a", factory, [](const std::string&) {}};
  other.on_group(group_of(1));
  other.rank_formed(1, 2, factory.rank_for(1, 2, 1));
  const auto quiet = other.rank_failed(1, 1, "");
  ASSERT_TRUE(quiet);
  EXPECT_EQ(quiet->devices[0].failure, "forming failed (no reason given)");
}

TEST_F(GpuGroupParticipantTest, OlderAndRepeatedGenerationsAreIgnored) {
  node.on_group(group_of(2));
  EXPECT_FALSE(node.on_group(group_of(1)));
  EXPECT_FALSE(node.on_group(group_of(2)));
  EXPECT_EQ(factory.started.size(), 2u);  // generation 2's two ranks only
  EXPECT_EQ(node.generation(), 2u);
  EXPECT_TRUE(logged("gpu_group generation 1 ignored: generation 2 was seen already"));
}

TEST_F(GpuGroupParticipantTest, ANewGenerationAbortsTheOldCommunicatorsBeforeFormingItsOwn) {
  node.on_group(group_of(1));
  form(1, 1, 0);
  ASSERT_TRUE(form(1, 2, 1));
  events.clear();
  // experts-a now holds ranks 0 and 1 (the router's node was lost).
  EXPECT_FALSE(node.on_group(group_of(2, {{"experts-a", 0}, {"experts-a", 1}})));
  EXPECT_EQ(events, (EventList{"abort g1 rank 1 cuda:0", "abort g1 rank 2 cuda:1",
                               "start g2 rank 0 cuda:0", "start g2 rank 1 cuda:1"}));
  EXPECT_EQ(node.state(), GpuGroupState::forming);
  EXPECT_EQ(node.rank_on(0), nullptr);
  EXPECT_TRUE(
      logged("aborted experts-a cuda:0 (rank 1 of 3, generation 1): superseded by "
             "generation 2"));
}

TEST_F(GpuGroupParticipantTest, ALateResultOfAnOlderGenerationIsAbortedNotKept) {
  node.on_group(group_of(1));
  node.on_group(group_of(2));
  EXPECT_FALSE(form(1, 1, 0));
  EXPECT_EQ(events.back(), "abort g1 rank 1 cuda:0");
  EXPECT_TRUE(logged("formed for rank 1 of generation 1 dropped: generation 2 is the newest"));
  EXPECT_FALSE(node.rank_failed(1, 2, "timed out"));  // no answer for a superseded generation
  EXPECT_FALSE(form(2, 1, 0));
  ASSERT_TRUE(form(2, 2, 1));
  EXPECT_EQ(node.state(), GpuGroupState::formed);
}

TEST_F(GpuGroupParticipantTest, AGroupWithoutThisNodeEndsItsRanks) {
  node.on_group(group_of(1));
  form(1, 1, 0);
  form(1, 2, 1);
  EXPECT_FALSE(node.on_group(group_of(2, {{"router", 0}, {"experts-b", 0}})));
  EXPECT_EQ(node.state(), GpuGroupState::none);
  EXPECT_EQ(events.back(), "abort g1 rank 2 cuda:1");
  EXPECT_EQ(factory.started.size(), 2u);
  EXPECT_TRUE(logged("generation 2: experts-a holds no rank"));
  // A rank no one waits for.
  node.on_group(group_of(3));
  EXPECT_FALSE(form(3, 0, 0));
  EXPECT_TRUE(logged("dropped: experts-a does not wait for that rank"));
}

TEST_F(GpuGroupParticipantTest, ARankThatCannotStartFailsAtOnce) {
  factory.fail_start = true;
  const auto answer = node.on_group(group_of(1));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->devices,
            (std::vector<GpuDeviceOutcome>{{0, "could not start forming: thread limit reached"},
                                           {1, "abandoned while forming: cuda:0 failed"}}));
  EXPECT_EQ(node.state(), GpuGroupState::failed);
  EXPECT_TRUE(factory.started.empty());
}

TEST_F(GpuGroupParticipantTest, EndingTheGroupAbortsEveryRank) {
  node.on_group(group_of(1));
  form(1, 1, 0);
  form(1, 2, 1);
  node.end_group();
  EXPECT_EQ(node.state(), GpuGroupState::none);
  EXPECT_EQ(events.back(), "abort g1 rank 2 cuda:1");
  EXPECT_EQ(node.rank_on(0), nullptr);
  EXPECT_EQ(node.generation(), 1u);  // an older gpu_group is still refused
  EXPECT_FALSE(node.on_group(group_of(1)));
}

TEST_F(GpuGroupParticipantTest, TheDestructorAbortsWhatIsHeld) {
  {
    GpuGroupParticipant scoped{"experts-a", factory, [](const std::string&) {}};
    scoped.on_group(group_of(1));
    scoped.rank_formed(1, 1, factory.rank_for(1, 1, 0));
  }
  EXPECT_EQ(events.back(), "abort g1 rank 1 cuda:0");
}

}  // namespace
}  // namespace moeflow::transport
