// The start-up device check: a shard naming a GPU the node lacks is refused with the shard, node
// and device count; CPU-only graphs never ask for the count. Runs anywhere (the count is given).
#include "graph/device_check.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace moeflow {
namespace {

const char* kTwoGpuShards =
    "[model]\npath = \"m\"\n"
    "[nodes.head]\nhost = \"127.0.0.1\"\ncontrol_port = 7001\ndata_port = 7002\nrouter = true\n"
    "[nodes.box]\nhost = \"127.0.0.1\"\ncontrol_port = 7003\ndata_port = 7004\n"
    "[shards.cpu0]\nnode = \"head\"\nexperts = \"0-3\"\n"
    "[shards.gpu0]\nnode = \"box\"\nexperts = \"4-5\"\ndevice = \"cuda:0\"\n"
    "[shards.gpu1]\nnode = \"box\"\nexperts = \"6-7\"\ndevice = \"cuda:1\"\n";

CudaDeviceProbe devices(int count, const std::string& why = "", int* calls = nullptr) {
  return [=](std::string& why_none) {
    if (calls) ++*calls;
    if (count == 0) why_none = why;
    return count;
  };
}

std::string refusal(const GraphSpec& g, const std::string& node, const CudaDeviceProbe& probe) {
  try {
    check_devices(g, node, probe);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DeviceCheck, DeviceIndexOfCudaDevices) {
  EXPECT_EQ(cuda_device_index("cpu"), -1);
  EXPECT_EQ(cuda_device_index("cuda:0"), 0);
  EXPECT_EQ(cuda_device_index("cuda:12"), 12);
}

TEST(DeviceCheck, NodeWithoutAnyGpuRefusesTheFirstGpuShardWithTheReason) {
  const GraphSpec g = parse_graph(kTwoGpuShards, "g.toml");
  const std::string e = refusal(g, "box", devices(0, "cudaGetDeviceCount: no CUDA-capable device"));
  EXPECT_NE(e.find("g.toml:"), std::string::npos) << e;
  EXPECT_NE(e.find("shard gpu0: device cuda:0, but node box has no CUDA device "
                   "(cudaGetDeviceCount: no CUDA-capable device)"),
            std::string::npos)
      << e;
}

TEST(DeviceCheck, NodeWithTooFewGpusNamesWhatItHas) {
  const GraphSpec g = parse_graph(kTwoGpuShards, "g.toml");
  const std::string one = refusal(g, "box", devices(1));
  EXPECT_NE(one.find("shard gpu1: device cuda:1, but node box has 1 CUDA device (cuda:0)"),
            std::string::npos)
      << one;
  EXPECT_EQ(refusal(g, "box", devices(2)), "");
  EXPECT_EQ(check_devices(g, "box", devices(2)), 2);
  EXPECT_EQ(check_devices(g, "box", devices(8)), 2);

  const GraphSpec three = parse_graph(
      std::string(kTwoGpuShards) +
          "[shards.gpu3]\nnode = \"box\"\nexperts = \"0-1\"\nlayers = \"0\"\ndevice = \"cuda:3\"\n",
      "g.toml");
  const std::string two = refusal(three, "box", devices(2));
  EXPECT_NE(two.find("shard gpu3: device cuda:3, but node box has 2 CUDA devices (cuda:0-1)"),
            std::string::npos)
      << two;
}

TEST(DeviceCheck, CpuShardsNeverStartTheProbe) {
  const GraphSpec g = parse_graph(kTwoGpuShards, "g.toml");
  int calls = 0;
  EXPECT_EQ(check_devices(g, "head", devices(0, "none", &calls)), 0);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(refusal(g, "box", devices(4, "", &calls)), "");
  EXPECT_EQ(calls, 1);  // once per check, not per shard
}

TEST(DeviceCheck, RouterStageOnAGpuIsCheckedOnTheRouterNodeOnly) {
  std::string text = kTwoGpuShards;
  text.replace(text.find("path = \"m\"\n"), 11, "path = \"m\"\nrouter_device = \"cuda:1\"\n");
  const GraphSpec g = parse_graph(text, "g.toml");
  EXPECT_EQ(g.model.router_device, "cuda:1");
  const std::string e = refusal(g, "head", devices(1));
  EXPECT_NE(e.find("g.toml:3:17: "), std::string::npos) << e;
  EXPECT_NE(
      e.find("[model] router_device: device cuda:1, but node head has 1 CUDA device (cuda:0)"),
      std::string::npos)
      << e;
  EXPECT_EQ(check_devices(g, "head", devices(2)), 1);  // the router stage
  EXPECT_EQ(check_devices(g, "box", devices(2)), 2);   // the two GPU shards, not the router
}

}  // namespace
}  // namespace moeflow
