#pragma once
// bridge (router side): one I/O thread that owns the ZeroMQ sockets to every remote node, moves
// expert requests out and replies back, says hello (protocol version, graph and model hash) and
// keeps each peer's heartbeat. A peer that stops answering is marked down after peer_down_ms;
// its outstanding requests fail at once and new ones fail until it is back.
//
// Actors hand it requests with submit() (thread-safe); it answers the given actor with
// (reply_atom, request_id, ExpertOutputPtr) or (fail_atom, request_id, message).
#include <caf/all.hpp>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "actors/messages.h"
#include "metrics/registry.h"
#include "transport/frame_counters.h"
#include "transport/wire_format.h"

namespace moeflow {

struct BridgePeer {
  std::string name;
  std::string control_endpoint;  // "tcp://host:port"
  std::string data_endpoint;
};

// What the bridge tells the router node's NCCL group service (actors/gpu_group_service.h). Called
// on the bridge's I/O thread, holding none of the bridge's locks; must not block for long.
struct BridgeGpuGroupEvents {
  std::function<void(const std::string& node)> node_up;    // handshake done (again)
  std::function<void(const std::string& node)> node_down;  // no answer for peer_down, or refused
  // A gpu_group_ready whose node name is the peer's own (others are dropped and logged).
  std::function<void(const transport::GpuGroupReady& ready)> ready;
};

struct BridgeTimeouts {
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds peer_down{2000};
};

class Bridge {
 public:
  // registry: where the link and peer metrics go (docs/metrics.md, "Transport"); null: none.
  Bridge(std::vector<BridgePeer> peers, transport::Hello ours, transport::DecodeLimits limits,
         BridgeTimeouts timeouts, metrics::Registry* registry = nullptr);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // `graph_hash`: the graph whose placement chose this peer (the expert node serves the shards of
  // that graph, which during a live change may not be its newest).
  void submit(int peer, uint64_t request_id, TokenBatchPtr batch, uint64_t graph_hash,
              caf::actor reply_to);
  // Asks `peer` to load (add = true) or drop a replica of (layer, expert) beside its graph's
  // shards (replica_add / replica_drop, docs/wire-format.md). The future holds "" once the node
  // serves it (or dropped it), else why not; it fails at once when the peer is down and when the
  // peer goes down before it answers.
  std::future<std::string> request_replica(int peer, bool add, int64_t layer, int32_t expert);
  // The graph this node now runs: sent in hellos and heartbeats from now on.
  // Peers added for that graph (add_peer's graph_hash) now get it like every other.
  void set_graph_hash(uint64_t hash);
  // Whether every peer (removed ones and those in `except` aside) is up and said (in its last
  // heartbeat reply or handshake) that it runs `hash`; when not, `waiting` names those that did
  // not.
  bool peers_run(uint64_t hash, std::string* waiting, const std::set<int>& except = {});
  // Waits until every peer has completed the handshake. False (with the reasons, one per peer
  // still down) when the timeout passes first.
  bool wait_until_up(std::chrono::milliseconds timeout, std::string* why);
  // A node added to the deployment while serving: connects and says hello like to the first
  // peers. A node that joins with a graph change runs the new graph only: `graph_hash` (when not
  // 0) is the one its hellos carry until set_graph_hash() moves this node to it. Returns its
  // peer index (indices are never reused).
  int add_peer(BridgePeer peer, uint64_t graph_hash = 0);
  // A node removed from the deployment: its outstanding requests fail, the bridge says bye and
  // closes its sockets, and its series leave /metrics. Its index stays unused.
  void remove_peer(int peer);
  // Empty when every peer is up, else why not (one entry per peer that is down).
  std::string down_reasons();
  // Where peer events and gpu_group_ready answers go from now on. Thread-safe; once it returns,
  // no call to the previous events is running or will start (so their target may go).
  void set_gpu_group_events(BridgeGpuGroupEvents events);
  // Sends `group` to the peer named `node` on its control socket (queued; request id = the
  // generation). Not sent when that peer is down or unknown: the controller hears of that as
  // node_down or its forming deadline. Thread-safe.
  void send_gpu_group(const std::string& node, transport::GpuGroup group);

 private:
  struct Outgoing {
    int peer;
    uint64_t request_id;
    TokenBatchPtr batch;
    uint64_t graph_hash;
    caf::actor reply_to;
  };
  struct ReplicaRequest {
    int peer;
    uint64_t request_id;
    bool add;
    int64_t layer;
    int32_t expert;
    std::shared_ptr<std::promise<std::string>> answer;
  };
  transport::Hello hello_for(int peer);
  void wake();
  struct PeerState;

  // Runs `call` on the current events, holding gpu_group_events_mutex_.
  void gpu_group_event(const std::function<void(const BridgeGpuGroupEvents&)>& call);
  void run();
  void handle_outbox(std::vector<PeerState>& states);
  void handle_control(PeerState& p, const transport::Message& m);
  void handle_data(PeerState& p, const transport::Message& m);
  void check_liveness(PeerState& p, std::chrono::steady_clock::time_point now);
  void fail_pending(PeerState& p, const std::string& why);
  // Starts the peers added since the last call and retires the removed ones; true when the set
  // of sockets to poll changed.
  bool sync_peers(std::vector<PeerState>& states);

  std::vector<BridgePeer> peers_;  // grows with add_peer(); guarded by mutex_ (the I/O thread
                                   // keeps its own copy of each in its PeerState)
  transport::Hello ours_;
  transport::DecodeLimits limits_;
  BridgeTimeouts timeouts_;
  metrics::Registry* registry_;

  std::mutex mutex_;
  std::deque<Outgoing> outbox_;
  std::deque<ReplicaRequest> replica_outbox_;                         // guarded by mutex_
  std::deque<std::pair<int, transport::GpuGroup>> gpu_group_outbox_;  // guarded by mutex_
  // Held while an event runs, not mutex_: the service it calls may call send_gpu_group.
  std::mutex gpu_group_events_mutex_;
  BridgeGpuGroupEvents gpu_group_events_;  // guarded by gpu_group_events_mutex_
  uint64_t next_replica_request_ = 1;      // guarded by mutex_
  std::vector<bool> up_;                   // guarded by mutex_
  std::vector<std::string> status_;        // why a peer is down; guarded by mutex_
  std::vector<uint64_t> peer_hash_;   // the graph each peer last said it runs; guarded by mutex_
  std::vector<bool> removed_;         // guarded by mutex_
  std::vector<uint64_t> hello_hash_;  // per peer, 0: graph_hash_; guarded by mutex_
  std::atomic<uint64_t> graph_hash_;
  int wake_fd_ = -1;  // eventfd: submit() wakes the I/O thread
  std::atomic<bool> stop_{false};
  zmq::context_t context_{1};
  std::thread thread_;
};

}  // namespace moeflow
