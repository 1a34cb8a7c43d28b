#include "actors/expert_node.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "actors/actor_system_setup.h"
#include "actors/added_replicas.h"
#include "actors/expert_shard_actor.h"
#include "actors/link_metrics.h"
#include "actors/node_devices.h"
#include "actors/node_metrics.h"
#include "api/metrics_server.h"
#include "core/error.h"
#include "graph/device_check.h"
#include "graph/graph_plan.h"
#include "graph/graph_watcher.h"
#include "model/dispatch.h"
#include "model/model_hash.h"
#include "transport/endpoint.h"
#include "transport/gpu_group_participant.h"
#include "transport/handshake.h"
#include "transport/message_socket.h"
#include "transport/nccl_rank_factory.h"

namespace moeflow {
namespace {

void log(const std::string& node, const std::string& line) {
  std::fprintf(stderr, "node %s: %s\n", node.c_str(), line.c_str());
  std::fflush(stderr);
}

struct LocalShards {
  std::vector<expert_shard_actor> actors;
  std::vector<std::string> names;
  std::vector<std::vector<int>> owner;  // [layer][expert] -> local shard index or -1
};

// The shards of `g` on `node`. A shard that `before` (served by `reuse`) had on this node with the
// same experts keeps its actor; the others load their weights here.
LocalShards load_local_shards(caf::actor_system& system, const GraphSpec& g, const ModelConfig& cfg,
                              const std::string& node,
                              const std::shared_ptr<metrics::Registry>& registry,
                              const GraphSpec* before = nullptr,
                              const LocalShards* reuse = nullptr) {
  check_node_devices(g, node);
  LocalShards local;
  local.owner.assign(cfg.num_layers, std::vector<int>(cfg.num_experts, -1));
  for (const ShardSpec* s : g.shards_on(node)) {
    const int index = static_cast<int>(local.actors.size());
    for (int64_t l = 0; l < cfg.num_layers; ++l)
      for (int64_t e = 0; e < cfg.num_experts; ++e)
        if (local.owner[l][e] < 0 && s->owns(l, e) && cfg.layer_is_moe[l])
          local.owner[l][e] = index;
    local.names.push_back(s->name);
    if (before && reuse) {
      const auto old = std::find(reuse->names.begin(), reuse->names.end(), s->name);
      const std::vector<const ShardSpec*> old_specs = before->shards_on(node);
      const auto spec = std::find_if(old_specs.begin(), old_specs.end(),
                                     [&](const ShardSpec* o) { return o->name == s->name; });
      if (old != reuse->names.end() && spec != old_specs.end() && same_shard(**spec, *s, cfg)) {
        local.actors.push_back(reuse->actors[old - reuse->names.begin()]);
        continue;
      }
    }
    log(node, "loading shard " + s->name + " (" + s->device + ")...");
    auto shard = std::shared_ptr<ExpertShard>(ExpertShard::load(
        g.model.path, g.model.dtype, [s](int64_t l, int64_t e) { return s->owns(l, e); }, {},
        cuda_device_index(s->device)));
    log(node, "shard " + s->name + ": " + std::to_string(shard->expert_count()) +
                  " experts loaded on " + shard->device_name());
    auto metrics = std::make_shared<ShardMetrics>(registry, s->name, cfg.num_layers,
                                                  cfg.num_experts, g.metrics.per_expert);
    local.actors.push_back(system.spawn(make_expert_shard, std::move(shard), std::move(metrics)));
  }
  return local;
}

// The graph this node serves and its shards; during a live change the previous one is served too
// (for the router's requests that still use it).
struct Served {
  GraphSpec graph;
  uint64_t hash = 0;
  LocalShards shards;
};

class ExpertNodeServer {
 public:
  ExpertNodeServer(const GraphSpec& g, const ExpertNodeOptions& opts)
      : node_(opts.node),
        stop_(opts.stop),
        reload_(opts.reload),
        watcher_(g.file),
        cfg_(load_model_config(g.model.path)),
        system_(system_config_) {
    const NodeSpec* spec = g.find_node(node_);
    if (!spec) throw Error("node " + node_ + " is not in " + g.file.string());
    spec_ = *spec;
    if (spec_.router)
      throw Error("node " + node_ +
                  " runs the router: drive it with `moeflow generate --graph` (the HTTP "
                  "gateway arrives in a later milestone)");
    ours_.node_name = node_;
    ours_.node_id = node_index(g);
    ours_.graph_hash = graph_hash(g);
    ours_.model_hash = model_hash(Checkpoint::open(g.model.path));
    export_node_info(*registry_, node_, "expert", ours_.graph_hash, ours_.model_hash);
    export_graph_reload_counters(*registry_);
    Served& first = served_.emplace_back();
    first.graph = g;
    first.hash = ours_.graph_hash;
    first.shards = load_local_shards(system_, g, cfg_, node_, registry_);
    added_ = std::make_unique<AddedReplicaSet>(system_, g, node_, cfg_, registry_);
    self_ = std::make_unique<caf::scoped_actor>(system_);
    limits_.hidden = static_cast<uint32_t>(cfg_.hidden_size);
    limits_.num_layers = static_cast<uint32_t>(cfg_.num_layers);
    limits_.num_experts = static_cast<uint32_t>(cfg_.num_experts);
    limits_.max_top_k = static_cast<uint32_t>(cfg_.top_k);
  }

  ~ExpertNodeServer() {
    if (loading_.joinable()) loading_.join();
    added_.reset();
    self_.reset();
    for (const Served& s : served_)
      for (const auto& a : s.shards.actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    if (next_)
      for (const auto& a : next_->shards.actors)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  void serve() {
    zmq::context_t context(1);
    transport::MessageSocket control(context, zmq::socket_type::router, limits_);
    transport::MessageSocket data(context, zmq::socket_type::router, limits_);
    try {
      control.bind(transport::tcp_endpoint(spec_.host, spec_.control_port));
      data.bind(transport::tcp_endpoint(spec_.host, spec_.data_port));
    } catch (const zmq::error_t& e) {
      throw Error("node " + node_ + ": cannot listen on " + spec_.host + " ports " +
                  std::to_string(spec_.control_port) + "/" + std::to_string(spec_.data_port) +
                  ": " + e.what());
    }
    std::unique_ptr<api::MetricsServer> metrics_server;
    if (spec_.metrics_port > 0) {
      metrics_server =
          std::make_unique<api::MetricsServer>(*registry_, spec_.host, spec_.metrics_port);
      metrics_server->start();
      log(node_, "metrics on http://" + spec_.host + ":" + std::to_string(spec_.metrics_port) +
                     "/metrics");
    } else {
      log(node_, "no metrics_port in the graph: not serving /metrics");
    }
    LinkMetrics control_metrics(*registry_, "any", "control");
    LinkMetrics data_metrics(*registry_, "any", "data");
    log(node_, "serving " + std::to_string(current().shards.actors.size()) + " shard(s) on " +
                   spec_.host + " (control " + std::to_string(spec_.control_port) + ", data " +
                   std::to_string(spec_.data_port) + "), graph " +
                   transport::format_hash(ours_.graph_hash) + ", model " +
                   transport::format_hash(ours_.model_hash));
    zmq::pollitem_t items[] = {{control.socket().handle(), 0, ZMQ_POLLIN, 0},
                               {data.socket().handle(), 0, ZMQ_POLLIN, 0}};
    while (!stop_ || !stop_->load()) {
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(100));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;  // a signal: loop and look at the stop flag
      }
      while (auto got = control.receive(std::chrono::milliseconds(0))) on_control(control, *got);
      while (auto got = data.receive(std::chrono::milliseconds(0))) on_data(data, *got);
      control_metrics.publish(control.counters());
      data_metrics.publish(data.counters());
      peers_connected_.set(static_cast<double>(peers_.size()));
      answer_added_replicas(control);
      for (const transport::GpuGroupReady& ready : gpu_ranks_.deliver(gpu_group_))
        send_gpu_group_ready(control, ready);
      check_reload();
    }
    log(node_, "stopping; dropped frames: control " +
                   std::to_string(control.counters().drops_total()) + ", data " +
                   std::to_string(data.counters().drops_total()));
  }

 private:
  // This node's position in the graph's nodes: its id in message headers.
  uint32_t node_index(const GraphSpec& g) const {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == node_) return static_cast<uint32_t>(i);
    return 0;
  }

  // SIGHUP or a saved graph file: read it again and, when this node can apply it live, load its
  // new shards in the background. Once loaded, the node serves the new graph (and the old one,
  // until the router's requests move to the new one).
  void check_reload() {
    if (next_ready_) return adopt_next();
    if (loading_.joinable()) return;
    const auto now = std::chrono::steady_clock::now();
    const bool asked = reload_ && reload_->exchange(false);
    if (!asked && now - last_watch_ < std::chrono::milliseconds(250)) return;
    last_watch_ = now;
    if (!watcher_.changed() && !asked) return;
    const std::string file = current().graph.file.string();
    GraphSpec next;
    try {
      next = load_graph(file);
    } catch (const GraphError& e) {
      for (const Diagnostic& d : e.diagnostics())
        log(node_, "graph reload refused: " + format_location(d.where) + ": " + d.message);
      return count_reload("refused");
    } catch (const Error& e) {
      log(node_, std::string("graph reload refused: ") + e.what());
      return count_reload("refused");
    }
    const GraphPlan plan = plan_graph_change(current().graph, next, cfg_);
    if (!plan.live()) {
      for (const std::string& r : plan.restart) log(node_, "graph reload refused: " + r);
      return count_reload("refused");
    }
    if (graph_hash(next) == current().hash) return count_reload("unchanged");
    log(node_, "graph reload: loading graph " + transport::format_hash(graph_hash(next)) + "...");
    // Loading weights takes a while: the I/O thread keeps serving the current graph meanwhile.
    loading_ = std::thread([this, next = std::move(next)]() mutable {
      try {
        auto served = std::make_unique<Served>();
        served->shards = load_local_shards(system_, next, cfg_, node_, registry_, &current().graph,
                                           &current().shards);
        served->hash = graph_hash(next);
        served->graph = std::move(next);
        next_ = std::move(served);
      } catch (const Error& e) {
        log(node_, std::string("graph reload refused: cannot load the new shards: ") + e.what());
        load_failed_ = true;
      }
      next_ready_ = true;
    });
  }

  void adopt_next() {
    loading_.join();
    next_ready_ = false;
    if (load_failed_ || !next_) {
      load_failed_ = false;
      return count_reload("refused");
    }
    const uint64_t before = current().hash;
    served_.push_back(std::move(*next_));
    next_.reset();
    added_->follow(current().graph);
    // Every graph since the last one the router sent a request for stays served: the router may
    // still be on any of them. Many edits with no traffic between them: the oldest go.
    while (served_.size() > kMaxServedGraphs) retire_before(1);
    ours_.graph_hash = current().hash;
    export_node_info(*registry_, node_, "expert", before, ours_.model_hash, 0.0);
    export_node_info(*registry_, node_, "expert", current().hash, ours_.model_hash, 1.0);
    count_reload("applied");
    if (!current().graph.find_node(node_))
      log(node_,
          "graph reload: this node is no longer in the graph; it serves the router's "
          "requests for the earlier graph until the router has moved, then nothing: stop it");
    std::string earlier;
    for (size_t i = 0; i + 1 < served_.size(); ++i)
      earlier += (earlier.empty() ? "" : ", ") + transport::format_hash(served_[i].hash);
    log(node_, "graph reload: serving graph " + transport::format_hash(current().hash) + " with " +
                   std::to_string(current().shards.actors.size()) + " shard(s) (and graph(s) " +
                   earlier + " until the router moves to it)");
  }

  const Served& current() const { return served_.back(); }

  // The position of graph `hash` among the served ones; served_.size() when it is not served.
  size_t served_index(uint64_t hash) const {
    size_t i = 0;
    while (i < served_.size() && served_[i].hash != hash) ++i;
    return i;
  }

  // Stops serving the `count` oldest graphs; their actors that a later graph (or the one being
  // loaded) shares keep running.
  void retire_before(size_t count) {
    std::set<caf::actor_addr> kept;
    for (size_t i = count; i < served_.size(); ++i)
      for (const auto& a : served_[i].shards.actors) kept.insert(a.address());
    if (next_)
      for (const auto& a : next_->shards.actors) kept.insert(a.address());
    for (size_t i = 0; i < count; ++i)
      for (const auto& a : served_[i].shards.actors)
        if (!kept.count(a.address())) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    served_.erase(served_.begin(), served_.begin() + static_cast<std::ptrdiff_t>(count));
  }

  void count_reload(const std::string& result) { count_graph_reload(*registry_, result); }

  void on_control(transport::MessageSocket& socket, const transport::Received& got) {
    if (!got.result.ok()) {
      log(node_, "dropped a control frame: " + got.result.detail);
      return;
    }
    const transport::Message& m = *got.result.message;
    const transport::Origin origin{ours_.node_id, ours_.graph_hash};
    switch (m.kind()) {
      case transport::MessageKind::hello: {
        const auto& theirs = std::get<transport::Hello>(m.body);
        // During a live change a peer may still run an earlier graph.
        transport::Hello ours = ours_;
        if (served_index(theirs.graph_hash) < served_.size()) ours.graph_hash = theirs.graph_hash;
        if (auto refusal = transport::check_peer(ours, theirs)) {
          log(node_, "refusing " + theirs.node_name + ": " + *refusal);
          socket.send_to(got.routing_id,
                         transport::encode_error(0, transport::ErrorCode::incompatible_peer,
                                                 *refusal, origin));
          return;
        }
        if (peers_.insert(got.routing_id).second)
          log(node_, "peer " + theirs.node_name + " connected");
        socket.send_to(got.routing_id, transport::encode_hello_ack(ours_));
        return;
      }
      case transport::MessageKind::heartbeat:
        if (peers_.count(got.routing_id))
          socket.send_to(got.routing_id, transport::encode_heartbeat(origin));
        else
          socket.send_to(got.routing_id,
                         transport::encode_error(0, transport::ErrorCode::bad_request,
                                                 "unknown peer: say hello first", origin));
        return;
      case transport::MessageKind::bye:
        peers_.erase(got.routing_id);
        return;
      case transport::MessageKind::gpu_group:
        if (!peers_.count(got.routing_id)) {
          socket.send_to(got.routing_id,
                         transport::encode_error(0, transport::ErrorCode::bad_request,
                                                 "unknown peer: say hello first", origin));
          return;
        }
        gpu_group_requester_ = got.routing_id;
        gpu_group_request_ = m.request_id();
        if (auto ready = gpu_group_.on_group(std::get<transport::GpuGroup>(m.body)))
          send_gpu_group_ready(socket, *ready);
        return;
      case transport::MessageKind::replica_add:
      case transport::MessageKind::replica_drop:
        if (!peers_.count(got.routing_id)) {
          socket.send_to(got.routing_id,
                         transport::encode_error(0, transport::ErrorCode::bad_request,
                                                 "unknown peer: say hello first", origin));
          return;
        }
        return on_replica_control(socket, got.routing_id, m);
      default:
        log(node_, "ignored a " + std::string(transport::message_kind_name(m.kind())) +
                       " message on the control port");
    }
  }

  // replica_add / replica_drop from the router's autoscaler. An add is answered once the weights
  // are loaded (answer_added_replicas), a drop at once.
  void on_replica_control(transport::MessageSocket& socket, const std::string& requester,
                          const transport::Message& m) {
    const auto& c = std::get<transport::ReplicaControl>(m.body);
    const std::string what =
        "replica of layer " + std::to_string(c.layer) + " expert " + std::to_string(c.expert);
    transport::ReplicaControl answer{c.layer, c.expert, ""};
    if (m.kind() == transport::MessageKind::replica_drop) {
      log(node_, (added_->drop(c.layer, c.expert) ? "dropped the " : "no ") + what +
                     " (the router's autoscaler retired it)");
    } else if (!cfg_.layer_is_moe[c.layer]) {
      answer.failure = "layer " + std::to_string(c.layer) + " has no experts";
    } else if (const int owner = current().shards.owner[c.layer][c.expert]; owner >= 0) {
      answer.failure =
          "node " + node_ + " already holds it in shard " + current().shards.names[owner];
    } else {
      log(node_, "loading a " + what + " for the router's autoscaler...");
      added_->add(c.layer, c.expert, m.request_id(), requester);
      return;
    }
    if (!answer.failure.empty()) log(node_, "refused a " + what + ": " + answer.failure);
    socket.send_to(requester, transport::encode_replica_control(
                                  transport::MessageKind::replica_ready, m.request_id(), answer,
                                  {ours_.node_id, ours_.graph_hash}));
  }

  // This node's answer to the newest gpu_group, once its ranks formed or one failed.
  void send_gpu_group_ready(transport::MessageSocket& socket, const transport::GpuGroupReady& r) {
    socket.send_to(gpu_group_requester_,
                   transport::encode_gpu_group_ready(gpu_group_request_, r,
                                                     {ours_.node_id, ours_.graph_hash}));
  }

  void answer_added_replicas(transport::MessageSocket& socket) {
    for (AddedReplicaSet::Finished& f : added_->poll()) {
      const std::string what =
          "replica of layer " + std::to_string(f.layer) + " expert " + std::to_string(f.expert);
      log(node_,
          f.failure.empty() ? "serving a " + what : "could not load a " + what + ": " + f.failure);
      socket.send_to(f.requester,
                     transport::encode_replica_control(transport::MessageKind::replica_ready,
                                                       f.request_id, {f.layer, f.expert, f.failure},
                                                       {ours_.node_id, ours_.graph_hash}));
    }
  }

  void on_data(transport::MessageSocket& socket, transport::Received& got) {
    if (!got.result.ok()) {
      log(node_, "dropped a data frame: " + got.result.detail);
      return;
    }
    transport::Message& m = *got.result.message;
    const transport::Origin origin{ours_.node_id, ours_.graph_hash};
    if (m.kind() != transport::MessageKind::expert_request) {
      log(node_, "ignored a " + std::string(transport::message_kind_name(m.kind())) +
                     " message on the data port");
      return;
    }
    auto reply_error = [&](transport::ErrorCode code, const std::string& text) {
      log(node_, "request " + std::to_string(m.request_id()) + " failed: " + text);
      socket.send_to(got.routing_id, transport::encode_error(m.request_id(), code, text, origin));
    };
    const size_t index = served_index(m.header.graph_hash);
    const bool known = index < served_.size();
    // The router has moved to this graph: the earlier ones' shards can go.
    if (known && index > 0) retire_before(index);
    if (!known) {
      return reply_error(transport::ErrorCode::incompatible_peer,
                         "request for graph " + transport::format_hash(m.header.graph_hash) +
                             ", this node runs " + transport::format_hash(ours_.graph_hash));
    }
    const LocalShards& local = served_.front().shards;  // the graph of this request, now the oldest
    // Moved out of the decoded message: the local shards share it without another copy.
    const auto shared = std::make_shared<const TokenBatch>(std::move(std::get<TokenBatch>(m.body)));
    const TokenBatch& batch = *shared;
    // The graph's shards, then the added replicas this request uses.
    std::vector<expert_shard_actor> holders = local.actors;
    std::vector<std::string> names = local.names;
    std::map<int32_t, int> added_index;  // expert -> holder, for this request's layer
    std::string problem;
    auto slices = split_batch(shared, static_cast<int>(local.actors.size() + added_->size()),
                              [&](int64_t layer, int32_t e) {
                                if (e < 0) return -1;  // a pair for another node
                                if (const int owner = local.owner[layer][e]; owner >= 0)
                                  return owner;
                                if (auto it = added_index.find(e); it != added_index.end())
                                  return it->second;
                                if (const expert_shard_actor* a = added_->find(layer, e)) {
                                  holders.push_back(*a);
                                  names.push_back(added_replica_name(layer, e));
                                  return added_index[e] = static_cast<int>(holders.size()) - 1;
                                }
                                if (problem.empty())
                                  problem = "expert " + std::to_string(e) + " of layer " +
                                            std::to_string(layer) + " is not on node " + node_;
                                return -1;
                              });
    if (!problem.empty()) return reply_error(transport::ErrorCode::bad_request, problem);
    transport::ExpertReply reply;
    reply.layer = batch.layer;
    reply.hidden_size = batch.hidden_size;
    reply.out.assign(batch.size() * batch.hidden_size, 0.0f);
    for (auto& slice : slices) {
      const TokenBatchPtr& sub = slice.batch;
      std::string failure;
      (*self_)
          ->request(holders[slice.holder],
                    std::chrono::milliseconds(current().graph.timeouts.request_ms), run_atom::value,
                    TokenBatchPtr(sub))
          .receive(
              [&](const ExpertOutputPtr& out) {
                add_slice_output(slice, out->rows.data(), reply.out.data());
                reply.computed_pairs += static_cast<uint64_t>(out->computed);
              },
              [&](caf::error& err) { failure = describe(err); });
      if (!failure.empty())
        return reply_error(transport::ErrorCode::internal,
                           "shard " + names[slice.holder] + ": " + failure);
    }
    socket.send_to(got.routing_id, transport::encode_expert_reply(m.request_id(), reply, origin));
  }

  std::string node_;
  const std::atomic<bool>* stop_;
  std::atomic<bool>* reload_;
  GraphFileWatcher watcher_;
  std::chrono::steady_clock::time_point last_watch_{};
  ModelConfig cfg_;
  NodeSpec spec_;
  std::shared_ptr<metrics::Registry> registry_ = std::make_shared<metrics::Registry>();
  metrics::Gauge& peers_connected_ = registry_->gauge(
      "moeflow_peers_connected", "Peers that completed the handshake and have not said bye");
  ActorSystemConfig system_config_;
  caf::actor_system system_;
  // The graphs this node serves, oldest first; the last is the newest (see adopt_next).
  std::deque<Served> served_;
  static constexpr size_t kMaxServedGraphs = 4;
  // A reload in progress: the loading thread fills next_, then sets next_ready_.
  std::thread loading_;
  std::unique_ptr<Served> next_;
  std::atomic<bool> next_ready_{false};
  bool load_failed_ = false;
  std::unique_ptr<AddedReplicaSet> added_;   // replicas added by the router's autoscaler
  std::unique_ptr<caf::scoped_actor> self_;  // the I/O thread's handle for asking the shards
  transport::Hello ours_;
  transport::DecodeLimits limits_;
  std::set<std::string> peers_;  // control routing ids that completed the handshake
  // The NCCL group (docs/nccl.md): this node's ranks form on the factory's threads; the answer
  // goes to whoever sent the newest gpu_group, with its request id. The factory is declared
  // first: the participant holds a reference to it.
  transport::NcclRankFactory gpu_ranks_;
  transport::GpuGroupParticipant gpu_group_{
      node_, gpu_ranks_, [this](const std::string& line) { log(node_, "gpu group: " + line); }};
  std::string gpu_group_requester_;
  uint64_t gpu_group_request_ = 0;
};

}  // namespace

void run_expert_node(const GraphSpec& graph, const ExpertNodeOptions& options) {
  ExpertNodeServer server(graph, options);
  server.serve();
}

}  // namespace moeflow
