// The real rank factory under GpuGroupParticipant: forming on threads of its own, results handed
// over on the owner's thread. Everywhere: a rank on a device this machine lacks fails with the
// communicator's reason and the participant answers with it. One GPU: a 1-rank group forms and
// abort ends it. Two GPUs: the two ranks of one node form together, as a node holding shards on
// both would.
#include "transport/nccl_rank_factory.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"
#include "transport/gpu_group_participant.h"

namespace moeflow::transport {
namespace {

using namespace std::chrono_literals;

const auto quiet = [](const std::string&) {};

GpuGroup group_on(std::vector<int32_t> devices, const NcclUniqueIdBytes& id) {
  GpuGroup g;
  g.generation = 1;
  g.unique_id = id;
  for (int32_t d : devices) g.members.push_back({"node", d});
  return g;
}

// Delivers results until the participant answers (or `timeout` passes).
std::vector<GpuGroupReady> answers_within(NcclRankFactory& factory,
                                          GpuGroupParticipant& participant,
                                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<GpuGroupReady> answers;
  while (answers.empty() && std::chrono::steady_clock::now() < deadline) {
    factory.wait_for_result(100ms);
    answers = factory.deliver(participant);
  }
  return answers;
}

TEST(NcclRankFactory, ARankOnAMissingDeviceFailsWithTheCommunicatorsReason) {
  // cuda:9998 and cuda:9999 exist nowhere: each rank fails at once, before NCCL is asked (so
  // also without the library). The id is never used.
  NcclUniqueIdBytes id{};
  id[0] = 1;
  NcclRankFactory factory;
  GpuGroupParticipant participant{"node", factory, quiet};
  EXPECT_FALSE(participant.on_group(group_on({9998, 9999}, id)));
  const std::vector<GpuGroupReady> answers = answers_within(factory, participant, 10s);
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_EQ(answers[0].devices.size(), 2u);
  EXPECT_FALSE(answers[0].all_formed());
  EXPECT_EQ(participant.state(), GpuGroupState::failed);
  // Whichever rank's thread finished first is the one named; the other may be abandoned.
  const std::string why = answers[0].devices[0].failure + " | " + answers[0].devices[1].failure;
  EXPECT_NE(why.find("NCCL rank"), std::string::npos) << why;
  const int count = kernels::cuda::device_count().count;
#if MOEFLOW_HAVE_NCCL
  EXPECT_NE(why.find(count == 0 ? "no CUDA device (" : "no such CUDA device"), std::string::npos)
      << why;
#else
  (void)count;
#endif
}

#if MOEFLOW_HAVE_NCCL

#define SKIP_WITHOUT_NCCL()                                                \
  do {                                                                     \
    if (const std::string why_ = nccl_unavailable_reason(); !why_.empty()) \
      GTEST_SKIP() << "NCCL unavailable (" << why_ << ")";                 \
  } while (0)

TEST(NcclRankFactory, OneRankFormsOnOneGpuAndAbortEndsIt) {
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count == 0) GTEST_SKIP() << "no CUDA device (" << devices.error << ")";
  SKIP_WITHOUT_NCCL();
  NcclRankFactory factory(NcclTimeouts{std::chrono::milliseconds(20000), 30s});
  GpuGroupParticipant participant{"node", factory, quiet};
  participant.on_group(group_on({0}, make_nccl_unique_id()));
  const std::vector<GpuGroupReady> answers = answers_within(factory, participant, 30s);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].all_formed()) << answers[0].devices[0].failure;
  auto* rank = dynamic_cast<NcclRank*>(participant.rank_on(0));
  ASSERT_NE(rank, nullptr);
  EXPECT_TRUE(rank->communicator().healthy()) << rank->communicator().error();
  EXPECT_EQ(rank->communicator().nranks(), 1);
  participant.end_group();  // aborts it
  EXPECT_EQ(participant.rank_on(0), nullptr);
}

TEST(NcclRankFactory, TwoRanksOfOneNodeFormTogetherOnTwoGpus) {
  const int count = kernels::cuda::device_count().count;
  if (count < 2) GTEST_SKIP() << "needs 2 CUDA devices (this machine has " << count << ")";
  SKIP_WITHOUT_NCCL();
  NcclRankFactory factory(NcclTimeouts{std::chrono::milliseconds(30000), 30s});
  GpuGroupParticipant participant{"node", factory, quiet};
  participant.on_group(group_on({0, 1}, make_nccl_unique_id()));
  const std::vector<GpuGroupReady> answers = answers_within(factory, participant, 60s);
  ASSERT_EQ(answers.size(), 1u);
  for (const GpuDeviceOutcome& d : answers[0].devices)
    EXPECT_TRUE(d.formed()) << "cuda:" << d.device << ": " << d.failure;
  for (int32_t d : {0, 1}) {
    auto* rank = dynamic_cast<NcclRank*>(participant.rank_on(d));
    ASSERT_NE(rank, nullptr) << "cuda:" << d;
    EXPECT_EQ(rank->communicator().nranks(), 2);
    EXPECT_EQ(rank->communicator().device(), d);
  }
}

#endif  // MOEFLOW_HAVE_NCCL

}  // namespace
}  // namespace moeflow::transport
