#include "actors/bridge.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>

#include "actors/actor_system_setup.h"
#include "actors/link_metrics.h"
#include "transport/handshake.h"
#include "transport/message_socket.h"

namespace moeflow {

using Clock = std::chrono::steady_clock;

struct Bridge::PeerState {
  struct Pending {
    caf::actor reply_to;
    Clock::time_point sent;
  };
  int index = 0;
  BridgePeer peer;       // a copy: peers_ may grow while the I/O thread reads this
  bool removed = false;  // removed from the deployment: no sockets any more
  std::unique_ptr<transport::MessageSocket> control, data;
  bool up = false;
  Clock::time_point last_seen{}, last_hello{}, last_heartbeat{};
  std::unordered_map<uint64_t, Pending> pending;  // by request id
  // replica_add / replica_drop sent and not yet answered, by request id.
  std::unordered_map<uint64_t, std::shared_ptr<std::promise<std::string>>> replica_pending;
  // Null when the bridge has no registry.
  std::unique_ptr<LinkMetrics> control_metrics, data_metrics;
  std::unique_ptr<PeerMetrics> peer_metrics;

  void set_up(bool is_up) {
    up = is_up;
    if (peer_metrics) peer_metrics->up(is_up);
  }
  void publish_links() {
    if (control_metrics) control_metrics->publish(control->counters());
    if (data_metrics) data_metrics->publish(data->counters());
  }
};

namespace {

void log(const std::string& line) {
  std::fprintf(stderr, "bridge: %s\n", line.c_str());
}

}  // namespace

Bridge::Bridge(std::vector<BridgePeer> peers, transport::Hello ours, transport::DecodeLimits limits,
               BridgeTimeouts timeouts, metrics::Registry* registry)
    : peers_(std::move(peers)),
      ours_(std::move(ours)),
      limits_(limits),
      timeouts_(timeouts),
      registry_(registry),
      up_(peers_.size(), false),
      status_(peers_.size(), "no handshake yet"),
      peer_hash_(peers_.size(), 0),
      removed_(peers_.size(), false),
      hello_hash_(peers_.size(), 0),
      graph_hash_(ours_.graph_hash),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  thread_ = std::thread([this] { run(); });
}

Bridge::~Bridge() {
  stop_ = true;
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) { /* the thread also polls with a timeout */
  }
  thread_.join();
  close(wake_fd_);
}

transport::Hello Bridge::hello_for(int peer) {
  transport::Hello hello = ours_;
  std::lock_guard<std::mutex> lock(mutex_);
  hello.graph_hash = hello_hash_[peer] != 0 ? hello_hash_[peer] : graph_hash_.load();
  return hello;
}

void Bridge::set_graph_hash(uint64_t hash) {
  std::lock_guard<std::mutex> lock(mutex_);
  graph_hash_ = hash;
  hello_hash_.assign(hello_hash_.size(), 0);
}

bool Bridge::peers_run(uint64_t hash, std::string* waiting, const std::set<int>& except) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string names;
  for (size_t i = 0; i < peers_.size(); ++i)
    if (!removed_[i] && !except.count(static_cast<int>(i)) && (!up_[i] || peer_hash_[i] != hash))
      names += (names.empty() ? "" : ", ") + peers_[i].name;
  if (waiting) *waiting = names;
  return names.empty();
}

void Bridge::wake() {
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) { /* already signalled */
  }
}

std::future<std::string> Bridge::request_replica(int peer, bool add, int64_t layer,
                                                 int32_t expert) {
  auto answer = std::make_shared<std::promise<std::string>>();
  std::future<std::string> future = answer->get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!up_[peer]) {
      answer->set_value("node " + peers_[peer].name + " is down: " + status_[peer]);
      return future;
    }
    replica_outbox_.push_back(
        {peer, next_replica_request_++, add, layer, expert, std::move(answer)});
  }
  wake();
  return future;
}

void Bridge::submit(int peer, uint64_t request_id, TokenBatchPtr batch, uint64_t graph_hash,
                    caf::actor reply_to) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!up_[peer]) {
      caf::anon_send(reply_to, fail_atom::value, request_id,
                     "node " + peers_[peer].name + " is down: " + status_[peer]);
      return;
    }
    outbox_.push_back({peer, request_id, std::move(batch), graph_hash, std::move(reply_to)});
  }
  wake();
}

void Bridge::set_gpu_group_events(BridgeGpuGroupEvents events) {
  std::lock_guard<std::mutex> lock(gpu_group_events_mutex_);
  gpu_group_events_ = std::move(events);
}

void Bridge::gpu_group_event(const std::function<void(const BridgeGpuGroupEvents&)>& call) {
  std::lock_guard<std::mutex> lock(gpu_group_events_mutex_);
  call(gpu_group_events_);
}

void Bridge::send_gpu_group(const std::string& node, transport::GpuGroup group) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    int peer = -1;
    for (size_t i = 0; i < peers_.size(); ++i)
      if (peers_[i].name == node && !removed_[i]) peer = static_cast<int>(i);
    if (peer < 0) {
      log("gpu_group generation " + std::to_string(group.generation) + " for node " + node +
          " not sent: no such peer");
      return;
    }
    gpu_group_outbox_.emplace_back(peer, std::move(group));
  }
  wake();
}

bool Bridge::wait_until_up(std::chrono::milliseconds timeout, std::string* why) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      bool all = true;
      std::string reasons;
      for (size_t i = 0; i < peers_.size(); ++i) {
        if (up_[i] || removed_[i]) continue;
        all = false;
        reasons += (reasons.empty() ? "" : "; ") + peers_[i].name + " (" +
                   peers_[i].control_endpoint + "): " + status_[i];
      }
      if (all) return true;
      if (Clock::now() >= deadline) {
        if (why) *why = reasons;
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Bridge::down_reasons() {
  std::string why;
  return wait_until_up(std::chrono::milliseconds(0), &why) ? "" : why;
}

void Bridge::fail_pending(PeerState& p, const std::string& why) {
  for (auto& [id, pending] : p.pending) caf::anon_send(pending.reply_to, fail_atom::value, id, why);
  if (p.peer_metrics) p.peer_metrics->failed(p.pending.size());
  p.pending.clear();
  for (auto& [id, answer] : p.replica_pending) answer->set_value(why);
  p.replica_pending.clear();
}

void Bridge::handle_outbox(std::vector<PeerState>& states) {
  std::deque<Outgoing> work;
  std::deque<ReplicaRequest> replicas;
  std::deque<std::pair<int, transport::GpuGroup>> groups;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work.swap(outbox_);
    replicas.swap(replica_outbox_);
    groups.swap(gpu_group_outbox_);
  }
  for (const auto& [peer, group] : groups) {
    if (peer >= static_cast<int>(states.size())) {  // added after this round's sync_peers
      std::lock_guard<std::mutex> lock(mutex_);
      gpu_group_outbox_.emplace_back(peer, group);
      continue;
    }
    PeerState& p = states[peer];
    const std::string what =
        "gpu_group generation " + std::to_string(group.generation) + " for node " + p.peer.name;
    if (!p.up)
      log(what + " not sent: the node is down");
    else if (!p.control->send(transport::encode_gpu_group(group.generation, group,
                                                          {ours_.node_id, graph_hash_})))
      log(what + " not sent: send queue full");
  }
  for (ReplicaRequest& r : replicas) {
    PeerState& p = states[r.peer];
    const std::string name = p.peer.name;
    if (!p.up) {
      r.answer->set_value("node " + name + " is down");
      continue;
    }
    const auto kind =
        r.add ? transport::MessageKind::replica_add : transport::MessageKind::replica_drop;
    if (!p.control->send(transport::encode_replica_control(
            kind, r.request_id, {r.layer, r.expert, ""}, {ours_.node_id, graph_hash_}))) {
      r.answer->set_value("node " + name + ": send queue full");
      continue;
    }
    p.replica_pending.emplace(r.request_id, std::move(r.answer));
  }
  for (Outgoing& o : work) {
    PeerState& p = states[o.peer];
    if (!p.up) {
      caf::anon_send(o.reply_to, fail_atom::value, o.request_id,
                     "node " + p.peer.name + " is down");
      continue;
    }
    auto frames =
        transport::encode_expert_request(o.request_id, o.batch, {ours_.node_id, o.graph_hash});
    if (!p.data->send(std::move(frames))) {
      caf::anon_send(o.reply_to, fail_atom::value, o.request_id,
                     "node " + p.peer.name + ": send queue full");
      continue;
    }
    p.pending.emplace(o.request_id, PeerState::Pending{std::move(o.reply_to), Clock::now()});
  }
}

void Bridge::handle_control(PeerState& p, const transport::Message& m) {
  const std::string& name = p.peer.name;
  p.last_seen = Clock::now();
  const bool was_up = p.up;
  if (m.kind() == transport::MessageKind::hello_ack) {
    const auto& theirs = std::get<transport::Hello>(m.body);
    if (auto refusal = transport::check_peer(hello_for(p.index), theirs)) {
      std::lock_guard<std::mutex> lock(mutex_);
      status_[p.index] = *refusal;
      log(*refusal);
      return;
    }
    if (!p.up) log("node " + name + " is up (handshake done)");
    p.set_up(true);
    std::lock_guard<std::mutex> lock(mutex_);
    up_[p.index] = true;
    peer_hash_[p.index] = theirs.graph_hash;
    status_[p.index].clear();
  } else if (m.kind() == transport::MessageKind::error) {
    const auto& err = std::get<transport::ErrorMessage>(m.body);
    // The peer does not know us (it restarted, or refused the handshake): back to hello.
    if (p.up) fail_pending(p, "node " + name + " lost our session: " + err.text);
    p.set_up(false);
    std::lock_guard<std::mutex> lock(mutex_);
    up_[p.index] = false;
    status_[p.index] = "refused: " + err.text;
    if (err.code == transport::ErrorCode::incompatible_peer)
      log("node " + name + " refused us: " + err.text);
  }
  if (m.kind() == transport::MessageKind::replica_ready) {
    auto it = p.replica_pending.find(m.request_id());
    if (it != p.replica_pending.end()) {
      const auto& c = std::get<transport::ReplicaControl>(m.body);
      it->second->set_value(c.failure.empty() ? "" : "node " + name + ": " + c.failure);
      p.replica_pending.erase(it);
    }
  }
  if (m.kind() == transport::MessageKind::heartbeat) {
    // The graph the peer runs now (it may have reloaded one since the handshake).
    std::lock_guard<std::mutex> lock(mutex_);
    peer_hash_[p.index] = m.header.graph_hash;
  }
  if (m.kind() == transport::MessageKind::gpu_group_ready) {
    const auto& ready = std::get<transport::GpuGroupReady>(m.body);
    if (ready.node != name)
      log("dropped a gpu_group_ready from " + name + " that speaks for node " + ready.node);
    else
      gpu_group_event([&](const BridgeGpuGroupEvents& e) {
        if (e.ready) e.ready(ready);
      });
  }
  if (p.up != was_up) {
    gpu_group_event([&](const BridgeGpuGroupEvents& e) {
      const auto& event = p.up ? e.node_up : e.node_down;
      if (event) event(name);
    });
  }
}

void Bridge::handle_data(PeerState& p, const transport::Message& m) {
  p.last_seen = Clock::now();
  auto it = p.pending.find(m.request_id());
  if (it == p.pending.end()) return;  // late reply to a request that already failed
  if (m.kind() == transport::MessageKind::expert_reply) {
    auto& reply = std::get<transport::ExpertReply>(const_cast<transport::Message&>(m).body);
    auto out = std::make_shared<ExpertOutput>();
    out->layer = reply.layer;
    out->rows = std::move(reply.out);
    out->computed = static_cast<int64_t>(reply.computed_pairs);
    caf::anon_send(it->second.reply_to, reply_atom::value, it->first,
                   ExpertOutputPtr(std::move(out)));
    if (p.peer_metrics)
      p.peer_metrics->round_trip(
          std::chrono::duration<double>(Clock::now() - it->second.sent).count());
  } else if (m.kind() == transport::MessageKind::error) {
    caf::anon_send(it->second.reply_to, fail_atom::value, it->first,
                   "node " + p.peer.name + ": " + std::get<transport::ErrorMessage>(m.body).text);
    if (p.peer_metrics) p.peer_metrics->failed();
  } else {
    return;
  }
  p.pending.erase(it);
}

void Bridge::check_liveness(PeerState& p, Clock::time_point now) {
  const std::string& name = p.peer.name;
  if (p.up && now - p.last_seen > timeouts_.peer_down) {
    const std::string why = "no answer for " + std::to_string(timeouts_.peer_down.count()) + " ms";
    log("node " + name + " is down: " + why);
    p.set_up(false);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      up_[p.index] = false;
      status_[p.index] = why;
    }
    fail_pending(p, "node " + name + " is down: " + why);
    gpu_group_event([&](const BridgeGpuGroupEvents& e) {
      if (e.node_down) e.node_down(name);
    });
  }
  const transport::Origin origin{ours_.node_id, graph_hash_};
  if (!p.up && now - p.last_hello >= timeouts_.heartbeat) {
    p.control->send(transport::encode_hello(hello_for(p.index)));
    p.last_hello = now;
  } else if (p.up && now - p.last_heartbeat >= timeouts_.heartbeat) {
    p.control->send(transport::encode_heartbeat(origin));
    p.last_heartbeat = now;
  }
}

int Bridge::add_peer(BridgePeer peer, uint64_t graph_hash) {
  int index;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    index = static_cast<int>(peers_.size());
    peers_.push_back(std::move(peer));
    up_.push_back(false);
    status_.push_back("no handshake yet");
    peer_hash_.push_back(0);
    removed_.push_back(false);
    hello_hash_.push_back(graph_hash);
  }
  wake();
  return index;
}

void Bridge::remove_peer(int peer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    removed_.at(peer) = true;
    up_[peer] = false;
    status_[peer] = "removed from the deployment";
  }
  wake();
}

bool Bridge::sync_peers(std::vector<PeerState>& states) {
  std::vector<BridgePeer> added;
  std::vector<bool> removed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    added.assign(peers_.begin() + static_cast<std::ptrdiff_t>(states.size()), peers_.end());
    removed = removed_;
  }
  bool changed = false;
  transport::SocketOptions opts;
  opts.send_high_water_mark = 10000;
  for (BridgePeer& peer : added) {
    PeerState& p = states.emplace_back();
    p.index = static_cast<int>(states.size()) - 1;
    p.peer = std::move(peer);
    p.control = std::make_unique<transport::MessageSocket>(context_, zmq::socket_type::dealer,
                                                           limits_, opts);
    p.data = std::make_unique<transport::MessageSocket>(context_, zmq::socket_type::dealer, limits_,
                                                        opts);
    p.control->connect(p.peer.control_endpoint);
    p.data->connect(p.peer.data_endpoint);
    if (registry_) {
      p.control_metrics = std::make_unique<LinkMetrics>(*registry_, p.peer.name, "control");
      p.data_metrics = std::make_unique<LinkMetrics>(*registry_, p.peer.name, "data");
      p.peer_metrics = std::make_unique<PeerMetrics>(*registry_, p.peer.name);
      p.peer_metrics->up(false);
    }
    changed = true;
  }
  for (PeerState& p : states) {
    if (p.removed || !removed[p.index]) continue;
    fail_pending(p, "node " + p.peer.name + " was removed from the deployment");
    if (p.up) p.control->send(transport::encode_bye({ours_.node_id, graph_hash_}));
    p.up = false;
    p.removed = true;
    p.control.reset();
    p.data.reset();
    p.control_metrics.reset();
    p.data_metrics.reset();
    p.peer_metrics.reset();
    if (registry_)
      for (const char* name :
           {"moeflow_peer_up", "moeflow_link_bytes_total", "moeflow_link_messages_total",
            "moeflow_link_dropped_frames_total", "moeflow_link_round_trip_seconds",
            "moeflow_link_failed_requests_total"})
        registry_->hide(name, {{"peer", p.peer.name}});
    log("node " + p.peer.name + " removed from the deployment");
    changed = true;
  }
  return changed;
}

void Bridge::run() {
  std::vector<PeerState> states;
  sync_peers(states);
  std::vector<zmq::pollitem_t> items;
  std::vector<int> polled;  // the peer of items[1 + 2k] and items[2 + 2k]
  auto rebuild = [&] {
    items.assign(1, {nullptr, wake_fd_, ZMQ_POLLIN, 0});
    polled.clear();
    for (auto& p : states) {
      if (p.removed) continue;
      items.push_back({p.control->socket().handle(), 0, ZMQ_POLLIN, 0});
      items.push_back({p.data->socket().handle(), 0, ZMQ_POLLIN, 0});
      polled.push_back(p.index);
    }
  };
  rebuild();
  const auto tick =
      std::chrono::milliseconds(std::max<int64_t>(5, timeouts_.heartbeat.count() / 4));
  while (!stop_) {
    try {
      zmq::poll(items.data(), items.size(), tick);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      uint64_t count;
      if (read(wake_fd_, &count, sizeof count) < 0) { /* nothing to read */
      }
    }
    if (sync_peers(states)) rebuild();
    handle_outbox(states);
    for (int i : polled) {
      PeerState& p = states[i];
      while (auto got = p.control->receive(std::chrono::milliseconds(0))) {
        if (got->result.ok())
          handle_control(p, *got->result.message);
        else
          log("dropped a frame from " + p.peer.name + " (control): " + got->result.detail);
      }
      while (auto got = p.data->receive(std::chrono::milliseconds(0))) {
        if (got->result.ok())
          handle_data(p, *got->result.message);
        else
          log("dropped a frame from " + p.peer.name + " (data): " + got->result.detail);
      }
      check_liveness(p, Clock::now());
      p.publish_links();
    }
  }
  for (auto& p : states) {
    if (p.removed) continue;
    fail_pending(p, "bridge shutting down");
    p.control->send(transport::encode_bye({ours_.node_id, graph_hash_}));
  }
}

}  // namespace moeflow
