// The router node's side of the NCCL group's control plane, driven event by event with a clock
// and unique ids the test controls: when a generation is announced, how answers, lost nodes and
// the forming deadline move its state, and what it logs.
#include "transport/gpu_group_controller.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "tests/transport/gpu_group_test_util.h"

namespace moeflow::transport {
namespace {

using namespace std::chrono_literals;
using test_util::CountingIds;
using test_util::four_members_graph;
using test_util::ManualClock;
using test_util::three_members_graph;

GpuDeviceOutcome formed(int32_t device) {
  return {device, ""};
}

struct GpuGroupControllerTest : ::testing::Test {
  ManualClock clock;
  CountingIds ids;
  std::vector<std::string> log;
  GpuGroupController controller{
      ids.fn(), clock.fn(), {}, [this](const std::string& line) { log.push_back(line); }};

  // Whether some log line holds every one of `parts`.
  bool logged(const std::vector<std::string>& parts) const {
    for (const std::string& line : log) {
      bool all = true;
      for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
      if (all) return true;
    }
    return false;
  }
  std::string log_text() const {
    std::string text;
    for (const std::string& line : log) text += line + "\n";
    return text;
  }
  // Applies the 3-member graph and has every member answer "formed".
  void form_three() {
    ASSERT_TRUE(controller.apply_graph(three_members_graph()).announce);
    const uint64_t g = controller.status().generation;
    controller.answer({g, "router", {formed(0)}});
    controller.answer({g, "experts-a", {formed(0), formed(1)}});
    ASSERT_EQ(controller.state(), GpuGroupState::formed) << log_text();
  }
};

TEST_F(GpuGroupControllerTest, FormsThreeMembersOnTwoNodes) {
  EXPECT_EQ(controller.state(), GpuGroupState::none);
  EXPECT_EQ(controller.status().generation, 0u);
  const GpuGroupCommand cmd = controller.apply_graph(three_members_graph());
  ASSERT_TRUE(cmd.announce);
  EXPECT_FALSE(cmd.ended);
  EXPECT_EQ(cmd.announce->generation, 1u);
  EXPECT_EQ(cmd.announce->unique_id[0], 1);
  EXPECT_EQ(cmd.announce->members,
            (std::vector<GpuGroupMember>{{"router", 0}, {"experts-a", 0}, {"experts-a", 1}}));
  EXPECT_EQ(cmd.announce->nodes(), (std::vector<std::string>{"router", "experts-a"}));
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  ASSERT_NE(controller.group(), nullptr);
  EXPECT_EQ(controller.group()->generation, 1u);
  EXPECT_FALSE(controller.gpu_data_plane());

  controller.answer({1, "router", {formed(0)}});
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  controller.answer({1, "experts-a", {formed(1), formed(0)}});  // any order
  EXPECT_EQ(controller.state(), GpuGroupState::formed);
  EXPECT_TRUE(controller.gpu_data_plane());
  EXPECT_EQ(controller.failure(), "");
  const GpuGroupStatus s = controller.status();
  EXPECT_EQ(s.generation, 1u);
  EXPECT_EQ(s.members, 3);
  EXPECT_EQ(s.state, GpuGroupState::formed);
  EXPECT_TRUE(logged({"graph applied", "announcing generation 1",
                      "router cuda:0, experts-a cuda:0, "
                      "experts-a cuda:1"}))
      << log_text();
  EXPECT_TRUE(logged({"generation 1 formed: 3 ranks on 2 nodes"})) << log_text();
}

TEST_F(GpuGroupControllerTest, ADeviceThatFailsFailsTheGenerationAndIsNamed) {
  controller.apply_graph(three_members_graph());
  controller.answer({1, "router", {formed(0)}});
  controller.answer({1,
                     "experts-a",
                     {formed(0),
                      {1,
                       "NCCL rank 2 of 3 on cuda:1: unhandled "
                       "cuda error"}}});
  EXPECT_EQ(controller.state(), GpuGroupState::failed);
  EXPECT_FALSE(controller.gpu_data_plane());
  EXPECT_EQ(controller.group(), nullptr);
  EXPECT_EQ(controller.failure(),
            "experts-a cuda:1 (rank 2): NCCL rank 2 of 3 on cuda:1: unhandled cuda error");
  EXPECT_EQ(controller.status().state, GpuGroupState::failed);
  EXPECT_EQ(controller.status().members, 3);
  EXPECT_TRUE(logged({"generation 1 failed", "experts-a cuda:1 (rank 2)", "stay on ZeroMQ"}))
      << log_text();
  // Every failed device is named, not only the first.
  GpuGroupController second{ids.fn(), clock.fn(), {}, [](const std::string&) {}};
  second.apply_graph(three_members_graph());
  second.answer({1, "experts-a", {{0, "out of memory"}, {1, "abandoned while forming"}}});
  EXPECT_NE(second.failure().find("experts-a cuda:0 (rank 1): out of memory; experts-a cuda:1 "
                                  "(rank 2): abandoned"),
            std::string::npos)
      << second.failure();
}

TEST_F(GpuGroupControllerTest, IgnoresOldGenerationsUnknownNodesAndDevicesAndNamesThem) {
  controller.apply_graph(three_members_graph());
  ASSERT_TRUE(controller.apply_graph(four_members_graph()).announce);  // generation 2
  controller.answer({1, "router", {formed(0)}});
  controller.answer({1, "experts-a", {formed(0), formed(1)}});
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  EXPECT_TRUE(logged({"gpu_group_ready from experts-a for generation 1 ignored",
                      "the current one is generation 2"}))
      << log_text();
  controller.answer({2, "stranger", {formed(0)}});
  EXPECT_TRUE(logged({"from stranger", "ignored", "holds no rank"})) << log_text();
  controller.answer({2, "experts-b", {formed(5)}});
  EXPECT_TRUE(logged({"experts-b cuda:5 is not a member"})) << log_text();
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  // A generation from the future is not the current one either.
  controller.answer({9, "router", {formed(0)}});
  EXPECT_TRUE(logged({"for generation 9 ignored"})) << log_text();

  controller.answer({2, "router", {formed(0)}});
  controller.answer({2, "experts-a", {formed(0), formed(1)}});
  EXPECT_EQ(controller.state(), GpuGroupState::forming);  // experts-b cuda:0 still missing
  controller.answer({2, "experts-b", {formed(0)}});
  EXPECT_EQ(controller.state(), GpuGroupState::formed);
}

TEST_F(GpuGroupControllerTest, ANodeLostWhileFormingGivesTheNextGenerationWithoutItsRanks) {
  const GpuGroup first = *controller.apply_graph(four_members_graph()).announce;
  controller.answer({1, "router", {formed(0)}});
  const GpuGroupCommand cmd = controller.node_down("experts-b");
  ASSERT_TRUE(cmd.announce);
  EXPECT_EQ(cmd.announce->generation, 2u);
  EXPECT_NE(cmd.announce->unique_id, first.unique_id);  // a fresh id: a new communicator
  EXPECT_EQ(cmd.announce->members,
            (std::vector<GpuGroupMember>{{"router", 0}, {"experts-a", 0}, {"experts-a", 1}}));
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  // The router's answer to generation 1 does not count for generation 2.
  controller.answer({2, "experts-a", {formed(0), formed(1)}});
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  controller.answer({2, "router", {formed(0)}});
  EXPECT_EQ(controller.state(), GpuGroupState::formed);
  EXPECT_TRUE(logged({"node experts-b is down", "announcing generation 2"})) << log_text();
  // Reported down twice: nothing new.
  EXPECT_FALSE(controller.node_down("experts-b").announce);
}

TEST_F(GpuGroupControllerTest, ANodeLostAfterFormingAndBackAgain) {
  ASSERT_TRUE(controller.apply_graph(four_members_graph()).announce);
  controller.answer({1, "router", {formed(0)}});
  controller.answer({1, "experts-a", {formed(0), formed(1)}});
  controller.answer({1, "experts-b", {formed(0)}});
  ASSERT_TRUE(controller.gpu_data_plane());

  const GpuGroupCommand down = controller.node_down("experts-a");
  ASSERT_TRUE(down.announce);
  EXPECT_EQ(down.announce->generation, 2u);
  EXPECT_EQ(down.announce->members, (std::vector<GpuGroupMember>{{"router", 0}, {"experts-b", 0}}));
  EXPECT_FALSE(controller.gpu_data_plane());  // until generation 2 formed
  EXPECT_EQ(controller.status().members, 2);

  const GpuGroupCommand up = controller.node_up("experts-a");
  ASSERT_TRUE(up.announce);
  EXPECT_EQ(up.announce->generation, 3u);
  EXPECT_EQ(up.announce->nranks(), 4);
  EXPECT_FALSE(controller.node_up("experts-a").announce);  // not down any more
}

TEST_F(GpuGroupControllerTest, ANodeWithoutRanksGoingDownChangesNothing) {
  form_three();
  const GpuGroupCommand cmd = controller.node_down("experts-b");  // CPU shards only
  EXPECT_FALSE(cmd.announce);
  EXPECT_FALSE(cmd.ended);
  EXPECT_EQ(controller.status().generation, 1u);
  EXPECT_TRUE(controller.gpu_data_plane());
  EXPECT_TRUE(logged({"node experts-b is down; it holds no rank of generation 1"})) << log_text();
  // Back up: the membership is the same, so still nothing.
  EXPECT_FALSE(controller.node_up("experts-b").announce);
}

TEST_F(GpuGroupControllerTest, TheFormingDeadlineFailsTheGeneration) {
  controller.apply_graph(three_members_graph());
  controller.answer({1, "router", {formed(0)}});
  clock.now += 59999ms;
  controller.tick();
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  clock.now += 1ms;
  controller.tick();
  EXPECT_EQ(controller.state(), GpuGroupState::failed);
  EXPECT_EQ(controller.failure(),
            "not formed within 60000 ms; no answer for experts-a cuda:0 (rank 1), experts-a "
            "cuda:1 (rank 2)");
  // A late answer does not revive it.
  controller.answer({1, "experts-a", {formed(0), formed(1)}});
  EXPECT_EQ(controller.state(), GpuGroupState::failed);
  EXPECT_TRUE(logged({"for generation 1 ignored: it is failed already"})) << log_text();

  // The deadline is an option.
  GpuGroupController quick{
      ids.fn(), clock.fn(), {.forming_timeout = 250ms}, [](const std::string&) {}};
  quick.apply_graph(three_members_graph());
  clock.now += 250ms;
  quick.tick();
  EXPECT_EQ(quick.state(), GpuGroupState::failed);
  // A formed group has no deadline.
  form_three();
  clock.now += 24h;
  controller.tick();
  EXPECT_EQ(controller.state(), GpuGroupState::formed);
}

TEST_F(GpuGroupControllerTest, AReloadThatChangesNoMemberKeepsTheGeneration) {
  form_three();
  // A second shard on a GPU that is a member already: same members.
  const GpuGroupCommand same = controller.apply_graph(
      three_members_graph(test_util::graph_shard("a2", "experts-a", "8", "cuda:1")));
  EXPECT_FALSE(same.announce);
  EXPECT_FALSE(same.ended);
  EXPECT_EQ(controller.status().generation, 1u);
  EXPECT_TRUE(controller.gpu_data_plane());

  const GpuGroupCommand added = controller.apply_graph(four_members_graph());
  ASSERT_TRUE(added.announce);
  EXPECT_EQ(added.announce->generation, 2u);
  EXPECT_EQ(added.announce->members.back(), (GpuGroupMember{"experts-b", 0}));
}

TEST_F(GpuGroupControllerTest, FewerThanTwoMembersSendNothingAndEndTheGroup) {
  const std::string one_gpu = "[model]\npath = \"m\"\n" +
                              test_util::graph_node("router", 7000, true) +
                              test_util::graph_node("experts-a", 7010) +
                              test_util::graph_shard("r0", "router", "0-3", "cuda:0") +
                              test_util::graph_shard("a0", "experts-a", "4-7", "cpu");
  const GpuGroupCommand none = controller.apply_graph(parse_graph(one_gpu, "one.toml"));
  EXPECT_FALSE(none.announce);
  EXPECT_FALSE(none.ended);  // there was no group to end
  EXPECT_EQ(controller.status().generation, 0u);
  EXPECT_EQ(controller.state(), GpuGroupState::none);

  form_three();
  const GpuGroupCommand ended = controller.apply_graph(parse_graph(one_gpu, "one.toml"));
  EXPECT_FALSE(ended.announce);
  EXPECT_TRUE(ended.ended);
  EXPECT_EQ(controller.state(), GpuGroupState::none);
  EXPECT_EQ(controller.group(), nullptr);
  EXPECT_FALSE(controller.gpu_data_plane());
  EXPECT_EQ(controller.status().members, 0);
  EXPECT_EQ(controller.status().generation, 1u);
  EXPECT_TRUE(logged({"1 GPU member(s) left (router cuda:0), no communicator; generation 1 ended"}))
      << log_text();

  // Losing a node can end it too: experts-a held two of the three ranks.
  form_three();
  const GpuGroupCommand lost = controller.node_down("experts-a");
  EXPECT_FALSE(lost.announce);
  EXPECT_TRUE(lost.ended);
  EXPECT_EQ(controller.state(), GpuGroupState::none);
}

TEST_F(GpuGroupControllerTest, AFailedGenerationIsRetriedByTheNextGraph) {
  ids.fail = true;
  const GpuGroupCommand cmd = controller.apply_graph(three_members_graph());
  EXPECT_FALSE(cmd.announce);
  EXPECT_EQ(controller.state(), GpuGroupState::failed);
  EXPECT_NE(controller.failure().find("making the NCCL unique id: libnccl.so.2"), std::string::npos)
      << controller.failure();
  EXPECT_EQ(controller.status().generation, 1u);

  ids.fail = false;
  const GpuGroupCommand retry = controller.apply_graph(three_members_graph());
  ASSERT_TRUE(retry.announce);
  EXPECT_EQ(retry.announce->generation, 2u);
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  EXPECT_EQ(controller.failure(), "");
}

TEST_F(GpuGroupControllerTest, AGraphWhoseGpusCannotFormAGroupIsRefused) {
  std::string text = "[model]\npath = \"m\"\n" + test_util::graph_node("box", 7000, true);
  for (uint32_t d = 0; d <= kMaxGpuGroupNodeDevices; ++d)
    text += test_util::graph_shard("s" + std::to_string(d), "box", std::to_string(d),
                                   "cuda:" + std::to_string(d));
  EXPECT_THROW(controller.apply_graph(parse_graph(text, "big.toml")), Error);
  EXPECT_EQ(controller.state(), GpuGroupState::none);
}

TEST_F(GpuGroupControllerTest, GenerationsStartAtTheFirstGenerationOption) {
  GpuGroupController later{
      ids.fn(), clock.fn(), {.first_generation = 1000}, [](const std::string&) {}};
  EXPECT_EQ(later.status().generation, 999u);
  EXPECT_EQ(later.apply_graph(three_members_graph()).announce->generation, 1000u);
  EXPECT_THROW((GpuGroupController{ids.fn(), clock.fn(), {.first_generation = 0}}), Error);
}

TEST(GpuGroupState, NamesAreMetricLabels) {
  EXPECT_EQ(gpu_group_state_name(GpuGroupState::none), "none");
  EXPECT_EQ(gpu_group_state_name(GpuGroupState::forming), "forming");
  EXPECT_EQ(gpu_group_state_name(GpuGroupState::formed), "formed");
  EXPECT_EQ(gpu_group_state_name(GpuGroupState::failed), "failed");
}

}  // namespace
}  // namespace moeflow::transport
