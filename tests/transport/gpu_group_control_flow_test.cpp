// The controller and the participants of two nodes together, every message through the wire
// codec as the control sockets would carry it, with a fake rank factory below NCCL: forming a
// group of 3 members on 2 nodes, a device that fails, and a node lost after forming (the old
// communicators aborted before the new generation's form).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "tests/transport/gpu_group_test_util.h"
#include "tests/transport/wire_test_util.h"
#include "transport/gpu_group_controller.h"
#include "transport/gpu_group_participant.h"
#include "transport/wire_format.h"

namespace moeflow::transport {
namespace {

using test_util::EventList;
using test_util::FakeRankFactory;

const auto quiet = [](const std::string&) {};

struct GpuGroupFlow : ::testing::Test {
  test_util::ManualClock clock;
  test_util::CountingIds ids;
  GpuGroupController controller{ids.fn(), clock.fn(), {}, quiet};
  EventList events;  // every node's, in one order
  FakeRankFactory factory{events};
  std::map<std::string, std::unique_ptr<GpuGroupParticipant>> nodes;

  GpuGroupFlow() {
    for (const char* name : {"router", "experts-a", "experts-b"})
      nodes[name] = std::make_unique<GpuGroupParticipant>(name, factory, quiet);
  }

  // The command's announcement, encoded and decoded as each member node receives it.
  void deliver(const GpuGroupCommand& cmd) {
    ASSERT_TRUE(cmd.announce);
    for (const std::string& name : cmd.announce->nodes()) {
      const DecodeResult got =
          decode(encode_gpu_group(7, *cmd.announce), test_util::small_limits());
      ASSERT_TRUE(got.ok()) << got.detail;
      if (auto ready = nodes.at(name)->on_group(std::get<GpuGroup>(got.message->body)))
        reply(*ready);
    }
  }
  // A node's answer, encoded and decoded as the router node receives it.
  void reply(const GpuGroupReady& ready) {
    const DecodeResult got = decode(encode_gpu_group_ready(7, ready), test_util::small_limits());
    ASSERT_TRUE(got.ok()) << got.detail;
    controller.answer(std::get<GpuGroupReady>(got.message->body));
  }
  // Hands back every rank started and not yet answered: formed, or failed for `fail_device`
  // on `fail_node`.
  void finish_forming(const std::string& fail_node = "", int32_t fail_device = -1) {
    const GpuGroup* group = controller.group();
    ASSERT_NE(group, nullptr);
    for (const auto& s : factory.started) {
      if (s.generation != group->generation) continue;
      const std::string& node = group->members[static_cast<size_t>(s.rank)].node;
      std::optional<GpuGroupReady> ready;
      if (node == fail_node && s.device == fail_device)
        ready = nodes[node]->rank_failed(s.generation, s.rank,
                                         "ncclCommInitRankConfig: "
                                         "unhandled system error");
      else
        ready = nodes[node]->rank_formed(s.generation, s.rank,
                                         factory.rank_for(s.generation, s.rank, s.device));
      if (ready) reply(*ready);
    }
  }
};

TEST_F(GpuGroupFlow, ThreeMembersOnTwoNodesForm) {
  deliver(controller.apply_graph(test_util::three_members_graph()));
  EXPECT_EQ(events, (EventList{"start g1 rank 0 cuda:0", "start g1 rank 1 cuda:0",
                               "start g1 rank 2 cuda:1"}));
  EXPECT_EQ(controller.state(), GpuGroupState::forming);
  finish_forming();
  EXPECT_EQ(controller.state(), GpuGroupState::formed);
  EXPECT_TRUE(controller.gpu_data_plane());
  EXPECT_NE(nodes["experts-a"]->rank_on(1), nullptr);
  EXPECT_EQ(nodes["experts-b"]->state(), GpuGroupState::none);  // never a member
}

TEST_F(GpuGroupFlow, AFailingDeviceIsNamedByTheController) {
  deliver(controller.apply_graph(test_util::three_members_graph()));
  finish_forming("experts-a", 1);
  EXPECT_EQ(controller.state(), GpuGroupState::failed);
  EXPECT_EQ(controller.failure(),
            "experts-a cuda:1 (rank 2): ncclCommInitRankConfig: unhandled system error");
  EXPECT_EQ(nodes["experts-a"]->state(), GpuGroupState::failed);
  EXPECT_EQ(nodes["experts-a"]->rank_on(0), nullptr);  // aborted with the failed generation
}

TEST_F(GpuGroupFlow, ANodeLostAfterFormingReformsWithoutItAbortingFirst) {
  deliver(controller.apply_graph(test_util::four_members_graph()));
  finish_forming();
  ASSERT_TRUE(controller.gpu_data_plane());
  events.clear();

  deliver(controller.node_down("experts-b"));
  // Each surviving node aborted its generation-1 communicators before forming generation 2's.
  EXPECT_EQ(events, (EventList{"abort g1 rank 0 cuda:0", "start g2 rank 0 cuda:0",
                               "abort g1 rank 1 cuda:0", "abort g1 rank 2 cuda:1",
                               "start g2 rank 1 cuda:0", "start g2 rank 2 cuda:1"}));
  // experts-b is gone: its generation-1 rank is not touched by anyone here.
  EXPECT_EQ(std::count(events.begin(), events.end(), "abort g1 rank 3 cuda:0"), 0);
  finish_forming();
  EXPECT_EQ(controller.state(), GpuGroupState::formed);
  EXPECT_EQ(controller.status().generation, 2u);
  EXPECT_EQ(controller.status().members, 3);
}

}  // namespace
}  // namespace moeflow::transport
