// The node's device check with this process's real CUDA probe: on a machine without a GPU (or a
// build without CUDA) a graph with a cuda:0 shard on this node is refused at start-up, naming the
// shard, node and why there is no device; with a GPU it passes.
#include "actors/node_devices.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "kernels/cuda/device.h"

namespace moeflow {
namespace {

TEST(NodeDevices, GpuShardNeedsTheDeviceOnThisNode) {
  const GraphSpec g = parse_graph(
      "[model]\npath = \"m\"\n[shards.gpu0]\nexperts = \"0-3\"\ndevice = \"cuda:0\"\n"
      "[shards.cpu0]\nexperts = \"4-7\"\n",
      "g.toml");
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count > 0) {
    EXPECT_NO_THROW(check_node_devices(g, "local"));
    return;
  }
  EXPECT_FALSE(devices.error.empty());
  try {
    check_node_devices(g, "local");
    FAIL() << "a cuda:0 shard was accepted on a node without a CUDA device";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("shard gpu0: device cuda:0, but node local has no CUDA device (" +
                        devices.error + ")"),
              std::string::npos)
        << what;
  }
}

TEST(NodeDevices, CpuOnlyGraphPassesEverywhere) {
  const GraphSpec g =
      parse_graph("[model]\npath = \"m\"\n[shards.all]\nexperts = \"0-7\"\n", "g.toml");
  EXPECT_NO_THROW(check_node_devices(g, "local"));
}

}  // namespace
}  // namespace moeflow
