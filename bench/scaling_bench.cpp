#include "bench/scaling_bench.h"

#include <omp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/autoscaler.h"
#include "actors/router_node.h"
#include "bench/bench_clock.h"
#include "bench/expert_nodes.h"
#include "bench/machine_limits.h"
#include "core/error.h"
#include "model/parameter_count.h"
#include "transport/endpoint.h"

namespace moeflow::bench {
namespace {

namespace fs = std::filesystem;

// One round: `batch` requests of the skewed prompt at once; returns the seconds it took.
double run_round(caf::actor_system& system, const scheduler_actor& scheduler,
                 const ScalingBenchOptions& o) {
  caf::scoped_actor self{system};
  auto request = std::make_shared<GenerationRequest>();
  request->prompt.assign(static_cast<size_t>(o.prompt), 7);
  request->max_tokens = o.tokens;
  request->stop_at_eos = false;
  const double t0 = now_seconds();
  for (int64_t i = 0; i < o.batch; ++i)
    self->send(scheduler, generate_atom::value, GenerationRequestPtr(request));
  for (int64_t i = 0; i < o.batch; ++i)
    self->receive([](const GenerationResultPtr&) {},
                  [](caf::error& err) { throw Error("request failed: " + describe(err)); });
  return now_seconds() - t0;
}

struct Result {
  double tokens_per_s = 0;
  size_t added = 0;
};

void write_scaling(std::ostream& out, const std::string& policy) {
  out << "[scaling]\nenabled = " << (policy == "off" ? "false" : "true") << "\npolicy = \""
      << (policy == "off" ? "threshold" : policy) << "\"\nhot_load = 1.5\nmax_replicas = 4\n"
      << "memory_mb = 65536\nwindow_ms = 300\ncooldown_ms = 600000\n";
}

std::string id_list(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

// Per MoE layer, its experts ordered by the tokens the skewed prompt sends them, most first.
std::vector<std::vector<int>> experts_by_load(const fs::path& dir, const ScalingBenchOptions& o) {
  const fs::path file = dir / "calibrate.toml";
  std::ofstream(file) << "[model]\npath = \"" << fs::absolute(o.model).string() << "\"\n";
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, load_graph(file), std::chrono::seconds(10));
  run_round(system, node->pipeline.scheduler, o);
  node->routing->flush();
  const auto totals = node->routing->token_totals();
  std::vector<std::vector<int>> order(totals.size());
  for (size_t l = 0; l < totals.size(); ++l) {
    order[l].resize(totals[l].size());
    std::iota(order[l].begin(), order[l].end(), 0);
    std::stable_sort(order[l].begin(), order[l].end(),
                     [&](int a, int b) { return totals[l][a] > totals[l][b]; });
  }
  return order;
}

// The router node and two expert nodes; each MoE layer's hottest half on experts-1.
void write_two_nodes(std::ostream& out, const std::vector<std::vector<int>>& order) {
  auto port = [] { return transport::free_loopback_port(); };
  out << "[timeouts]\nrequest_ms = 60000\npeer_down_ms = 10000\n\n"
      << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
      << "\ndata_port = " << port() << "\nrouter = true\n\n";
  for (const char* n : {"experts-1", "experts-2"})
    out << "[nodes." << n << "]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
        << "\ndata_port = " << port() << "\n\n";
  for (size_t l = 0; l < order.size(); ++l) {
    if (order[l].empty()) continue;  // dense layer
    const size_t half = order[l].size() / 2;
    std::vector<int> hot(order[l].begin(), order[l].begin() + half);
    std::vector<int> cold(order[l].begin() + half, order[l].end());
    std::sort(hot.begin(), hot.end());
    std::sort(cold.begin(), cold.end());
    out << "[shards.hot-l" << l << "]\nnode = \"experts-1\"\nlayers = \"" << l << "\"\nexperts = \""
        << id_list(hot) << "\"\n\n"
        << "[shards.cold-l" << l << "]\nnode = \"experts-2\"\nlayers = \"" << l
        << "\"\nexperts = \"" << id_list(cold) << "\"\n\n";
  }
}

Result measure(const fs::path& dir, const std::string& policy, const ScalingBenchOptions& o,
               const std::vector<std::vector<int>>& order) {
  const fs::path file = dir / (policy + ".toml");
  {
    std::ofstream out(file);
    out << "[model]\npath = \"" << fs::absolute(o.model).string() << "\"\n\n";
    if (o.nodes == 2) write_two_nodes(out, order);
    write_scaling(out, policy);
  }
  const GraphSpec graph = load_graph(file);
  ExpertNodes children(graph, file, dir, policy + "-");
  Result r;
  {
    ActorSystemConfig cfg;
    caf::actor_system system{cfg};
    auto node = start_router_node(system, graph, std::chrono::seconds(60));
    Autoscaler autoscaler(
        *node, [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); });
    // Warm-up: skewed traffic for a few windows while the autoscaler decides (and until the
    // replicas expert nodes load have joined).
    const double warm_until = now_seconds() + 2.0;
    while (now_seconds() < warm_until || autoscaler.loading() > 0) {
      run_round(system, node->pipeline.scheduler, o);
      autoscaler.poll();
    }
    r.added = node->added.size();
    double seconds = 0;
    for (int64_t i = 0; i < o.rounds; ++i)
      seconds += run_round(system, node->pipeline.scheduler, o);
    r.tokens_per_s = static_cast<double>(o.rounds * o.batch * (o.prompt + o.tokens)) / seconds;
  }
  return r;
}

}  // namespace

int run_scaling_bench(const ScalingBenchOptions& opts) {
  const ModelConfig cfg = load_model_config(opts.model);
  const fs::path dir =
      fs::temp_directory_path() / ("moeflow-scaling-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  if (opts.nodes != 0 && opts.nodes != 2) throw Error("nodes must be 0 or 2");
  std::vector<std::vector<int>> order;
  if (opts.nodes == 2) {
    // One core per process: this process (the router) and each expert node (inherited).
    setenv("OMP_NUM_THREADS", "1", 1);
    omp_set_num_threads(1);
    order = experts_by_load(dir, opts);
  }
  std::vector<std::pair<std::string, Result>> results;
  for (const char* policy : {"off", "threshold", "eplb"}) {
    std::fprintf(stderr, "measuring autoscaling %s...\n", policy);
    results.emplace_back(policy, measure(dir, policy, opts, order));
  }
  const double peak = measure_fma_peak();
  const double flops_per_token = 2.0 * static_cast<double>(count_parameters(cfg).active);
  std::printf("## Autoscaling under skewed load\n\n");
  std::printf(
      "model: %s; %lld requests at once, prompt %lld x the same token, %lld generated; %lld timed "
      "rounds after 2 s of warm-up; %s; %s\n\n",
      opts.model.c_str(), static_cast<long long>(opts.batch), static_cast<long long>(opts.prompt),
      static_cast<long long>(opts.tokens), static_cast<long long>(opts.rounds),
      opts.nodes == 2 ? "router + 2 expert nodes (processes, 1 thread each), each layer's hottest "
                        "half of the experts on experts-1"
                      : "one process holding every expert",
      cpu_model().c_str());
  std::printf(
      "| autoscaling | replicas added | tokens/s (prompt + generated) | vs off | of the FMA "
      "peak |\n|---|---|---|---|---|\n");
  for (const auto& [policy, r] : results)
    std::printf("| %s | %zu | %.1f | %.2fx | %.1f%% |\n", policy.c_str(), r.added, r.tokens_per_s,
                r.tokens_per_s / results[0].second.tokens_per_s,
                100.0 * r.tokens_per_s * flops_per_token / peak);
  std::printf(
      "\nFMA peak %.0f GFLOP/s (fp32, %s, measured after the runs); 2 x %.0f M active parameters "
      "per token. %s\n",
      peak / 1e9, opts.nodes == 2 ? "one thread" : "all threads",
      static_cast<double>(count_parameters(cfg).active) / 1e6,
      opts.nodes == 2 ? "Replicas go to the expert node without the expert (the cold one)."
                      : "Added replicas live in the router node's process and share its cores "
                        "with the graph's shard.");
  return 0;
}

}  // namespace moeflow::bench
