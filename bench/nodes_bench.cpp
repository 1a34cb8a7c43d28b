#include "bench/nodes_bench.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>

#include "actors/actor_system_setup.h"
#include "actors/router_node.h"
#include "bench/bench_clock.h"
#include "bench/expert_nodes.h"
#include "bench/router_steps.h"
#include "model/sampler.h"
#include "transport/endpoint.h"

namespace moeflow::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The graph for `nodes` nodes: the router node alone (it holds every expert), or the router plus
// one or two expert nodes sharing the experts.
std::string write_graph(const fs::path& dir, const fs::path& model, int nodes, int experts) {
  auto port = [] { return transport::free_loopback_port(); };
  const fs::path file = dir / ("nodes" + std::to_string(nodes) + ".toml");
  std::ofstream out(file);
  out << "[model]\npath = \"" << fs::absolute(model).string() << "\"\n\n"
      << "[timeouts]\nrequest_ms = 60000\npeer_down_ms = 10000\n\n"
      << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
      << "\ndata_port = " << port() << "\nrouter = true\n\n";
  for (int n = 1; n < nodes; ++n)
    out << "[nodes.experts-" << n << "]\nhost = \"127.0.0.1\"\ncontrol_port = " << port()
        << "\ndata_port = " << port() << "\n\n";
  if (nodes == 1) out << "[shards.all]\nnode = \"router\"\nexperts = \"all\"\n";
  for (int n = 1; n < nodes; ++n) {
    const int first = experts * (n - 1) / (nodes - 1), last = experts * n / (nodes - 1) - 1;
    out << "[shards.s" << n << "]\nnode = \"experts-" << n << "\"\nexperts = \"" << first << "-"
        << last << "\"\n\n";
  }
  return file.string();
}

struct Measurement {
  double tokens_per_s = 0, step_ms = 0, wait_median_us = 0, wait_p99_us = 0;
};

Measurement measure(const std::string& graph_file, const NodesBenchOptions& opts,
                    const fs::path& logs) {
  const GraphSpec graph = load_graph(graph_file);
  ExpertNodes children(graph, graph_file, logs);
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, graph, std::chrono::minutes(2));
  const ModelConfig& model = node->pipeline.config;
  caf::scoped_actor self{system};
  std::mt19937_64 rng(1);
  StepRequestPtr step = random_prompt_step(opts.batch, 16, 1, model.vocab_size, rng);
  Measurement m;
  std::vector<double> waits;
  double timed = 0;
  const int64_t warmup = 3;
  for (int64_t t = 0; t < warmup + opts.tokens; ++t) {
    const auto t0 = Clock::now();
    const StepResultPtr result = run_router_step(self, node->pipeline.router, step);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    step = greedy_next_step(*step, *result);
    if (t < warmup) continue;  // the prefill and first steps fault pages in
    timed += secs;
    waits.insert(waits.end(), result->layer_wait_us.begin(), result->layer_wait_us.end());
  }
  m.tokens_per_s = opts.batch * opts.tokens / timed;
  m.step_ms = 1e3 * timed / opts.tokens;
  m.wait_median_us = percentile(waits, 0.5);
  m.wait_p99_us = percentile(waits, 0.99);
  node.reset();
  return m;
}

}  // namespace

int run_nodes_bench(const NodesBenchOptions& opts) {
  const ModelConfig cfg = load_model_config(opts.model);
  const fs::path dir =
      fs::temp_directory_path() / ("moeflow-nodes-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::printf("## decode on 1, 2 and 3 nodes (processes on loopback): batch %lld, %lld steps\n\n",
              static_cast<long long>(opts.batch), static_cast<long long>(opts.tokens));
  std::printf("model: %s (%lld MoE layers x %lld experts); logs in %s\n\n", opts.model.c_str(),
              static_cast<long long>(cfg.moe_layer_count()),
              static_cast<long long>(cfg.num_experts), dir.c_str());
  std::printf(
      "| nodes | tokens/s | step | MoE layer wait, median | p99 | added per layer hop (median) "
      "|\n");
  std::printf("|---|---|---|---|---|---|\n");
  double local_median = 0;
  for (int nodes = 1; nodes <= 3; ++nodes) {
    std::fprintf(stderr, "measuring %d node(s)...\n", nodes);
    const std::string file = write_graph(dir, opts.model, nodes, static_cast<int>(cfg.num_experts));
    const Measurement m = measure(file, opts, dir);
    if (nodes == 1) local_median = m.wait_median_us;
    std::printf(
        "| %d | %.1f | %.2f ms | %.0f us | %.0f us | %s |\n", nodes, m.tokens_per_s, m.step_ms,
        m.wait_median_us, m.wait_p99_us,
        nodes == 1
            ? "(local shards)"
            : (std::to_string(static_cast<int>(m.wait_median_us - local_median)) + " us").c_str());
    std::fflush(stdout);
  }
  std::printf(
      "\nMoE layer wait: from dispatching a layer's rows to the last shard's reply (expert compute"
      " + transport). The hop cost is the difference to the 1-node run, where shards are actors in"
      " the router's process. All processes share this machine's cores.\n");
  return 0;
}

}  // namespace moeflow::bench
