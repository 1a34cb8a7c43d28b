#pragma once
// Shared by the tests of the NCCL group's control plane: graphs with GPU shards, a clock and a
// unique-id maker the test moves by hand, and a fake rank factory (below NCCL) that records in
// one event list when each rank starts forming and when each is aborted, so that tests can check
// the order.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "transport/gpu_group.h"
#include "transport/gpu_group_participant.h"

namespace moeflow::transport::test_util {

inline std::string graph_node(const std::string& name, int port, bool router = false) {
  return "[nodes." + name + "]\nhost = \"127.0.0.1\"\ncontrol_port = " + std::to_string(port) +
         "\ndata_port = " + std::to_string(port + 1) + (router ? "\nrouter = true\n" : "\n");
}

inline std::string graph_shard(const std::string& name, const std::string& on,
                               const std::string& experts, const std::string& device) {
  return "[shards." + name + "]\nnode = \"" + on + "\"\nexperts = \"" + experts +
         "\"\ndevice = \"" + device + "\"\n";
}

// 3 GPU members on 2 nodes: router cuda:0 (rank 0), experts-a cuda:0 and cuda:1 (ranks 1, 2);
// experts-b holds a CPU shard only. `extra` adds shards.
inline GraphSpec three_members_graph(const std::string& extra = "") {
  const std::string text = "[model]\npath = \"m\"\n" + graph_node("router", 7000, true) +
                           graph_node("experts-a", 7010) + graph_node("experts-b", 7020) +
                           graph_shard("r0", "router", "0-1", "cuda:0") +
                           graph_shard("a0", "experts-a", "2-3", "cuda:0") +
                           graph_shard("a1", "experts-a", "4-5", "cuda:1") +
                           graph_shard("b0", "experts-b", "6-7", "cpu") + extra;
  return parse_graph(text, "gpu-group.toml");
}

// The same plus a GPU shard on experts-b: 4 members on 3 nodes (experts-b cuda:0 is rank 3).
inline GraphSpec four_members_graph() {
  return three_members_graph(graph_shard("b1", "experts-b", "8", "cuda:0"));
}

// A clock that moves only when the test says so.
struct ManualClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] { return now; };
  }
};

// Unique ids 1, 2, 3, ... (first byte), never all zero; or a throw when `fail` is set.
struct CountingIds {
  uint8_t next = 1;
  bool fail = false;
  std::function<NcclUniqueIdBytes()> fn() {
    return [this] {
      if (fail) throw std::runtime_error("libnccl.so.2: cannot open shared object file");
      NcclUniqueIdBytes id{};
      id[0] = next++;
      return id;
    };
  }
};

// "start g1 rank 2 cuda:1", "abort g1 rank 2 cuda:1", in the order they happened.
using EventList = std::vector<std::string>;

inline std::string rank_text(uint64_t generation, int rank, int32_t device) {
  return "g" + std::to_string(generation) + " rank " + std::to_string(rank) +
         " cuda:" + std::to_string(device);
}

class FakeRank : public GpuRank {
 public:
  FakeRank(EventList& events, uint64_t generation, int rank, int32_t device)
      : events_(events), name_(rank_text(generation, rank, device)) {}
  void abort() override {
    if (!aborted_) events_.push_back("abort " + name_);
    aborted_ = true;
  }

 private:
  EventList& events_;
  std::string name_;
  bool aborted_ = false;
};

class FakeRankFactory : public GpuRankFactory {
 public:
  explicit FakeRankFactory(EventList& events) : events_(events) {}
  void start_forming(const GpuGroup& group, int rank) override {
    const int32_t device = group.members.at(static_cast<size_t>(rank)).device;
    if (fail_start) throw std::runtime_error("thread limit reached");
    events_.push_back("start " + rank_text(group.generation, rank, device));
    started.push_back({group.generation, rank, device});
  }
  // What the real factory's thread would hand back for a started rank.
  std::unique_ptr<GpuRank> rank_for(uint64_t generation, int rank, int32_t device) {
    return std::make_unique<FakeRank>(events_, generation, rank, device);
  }

  struct Started {
    uint64_t generation;
    int rank;
    int32_t device;
  };
  std::vector<Started> started;
  bool fail_start = false;

 private:
  EventList& events_;
};

}  // namespace moeflow::transport::test_util
