#include "bench/reload_bench.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "actors/actor_system_setup.h"
#include "actors/graph_reloader.h"
#include "actors/router_node.h"
#include "bench/bench_clock.h"
#include "bench/expert_nodes.h"
#include "core/error.h"
#include "model/expert_shard.h"
#include "transport/endpoint.h"

namespace moeflow::bench {
namespace {

namespace fs = std::filesystem;

struct Layout {
  fs::path file;
  fs::path model;
  int ports[6];
};

// Shard a (experts [0, split)) on experts-a, shard b (the rest) on experts-b; replaced in one
// rename, as an editor saves.
void write_graph(const Layout& l, int split, int experts) {
  const fs::path tmp = l.file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << "[model]\npath = \"" << fs::absolute(l.model).string() << "\"\n\n"
        << "[timeouts]\nrequest_ms = 60000\npeer_down_ms = 10000\n\n"
        << "[nodes.router]\nhost = \"127.0.0.1\"\ncontrol_port = " << l.ports[0]
        << "\ndata_port = " << l.ports[1] << "\nrouter = true\n\n"
        << "[nodes.experts-a]\nhost = \"127.0.0.1\"\ncontrol_port = " << l.ports[2]
        << "\ndata_port = " << l.ports[3] << "\n\n"
        << "[nodes.experts-b]\nhost = \"127.0.0.1\"\ncontrol_port = " << l.ports[4]
        << "\ndata_port = " << l.ports[5] << "\n\n"
        << "[shards.a]\nnode = \"experts-a\"\nexperts = \"0-" << split - 1 << "\"\n\n"
        << "[shards.b]\nnode = \"experts-b\"\nexperts = \"" << split << "-" << experts - 1
        << "\"\n";
  }
  fs::rename(tmp, l.file);
}

}  // namespace

int run_reload_bench(const ReloadBenchOptions& opts) {
  const ModelConfig cfg = load_model_config(opts.model);
  const int experts = static_cast<int>(cfg.num_experts);
  if (experts < 4) throw Error("reload bench: the model needs at least 4 experts per layer");
  const fs::path dir =
      fs::temp_directory_path() / ("moeflow-reload-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  Layout layout{dir / "graph.toml", opts.model, {}};
  for (int& p : layout.ports) p = transport::free_loopback_port();
  const int half = experts / 2;
  write_graph(layout, half, experts);

  ExpertNodes children(load_graph(layout.file), layout.file, dir);
  ActorSystemConfig system_cfg;
  caf::actor_system system{system_cfg};
  auto node = start_router_node(system, load_graph(layout.file), std::chrono::minutes(2));
  std::vector<std::string> log;
  RouterGraphReloader reloader(*node, nullptr, std::chrono::seconds(60),
                               [&log](const std::string& line) { log.push_back(line); });

  // The weights an edit moves: two experts of every MoE layer, loaded here the way the receiving
  // expert node loads them.
  std::vector<double> load_ms;
  for (int i = 0; i < 3; ++i) {
    const double t0 = now_seconds();
    auto moved = ExpertShard::load(
        opts.model, "auto", [half](int64_t, int64_t e) { return e == half - 1 || e == half - 2; },
        {});
    load_ms.push_back(1e3 * (now_seconds() - t0));
  }

  std::vector<double> total_ms;
  for (int64_t i = 0; i < opts.edits; ++i) {
    // Experts half-2 and half-1 go to experts-b, then back.
    const int split = i % 2 == 0 ? half - 2 : half;
    const size_t lines = log.size();
    const double t0 = now_seconds();
    write_graph(layout, split, experts);
    bool applied = false;
    while (!applied && now_seconds() - t0 < 120) {
      reloader.poll();
      for (size_t k = lines; k < log.size(); ++k) {
        if (log[k].find("refused") != std::string::npos) throw Error("reload refused: " + log[k]);
        applied |= log[k].find("now serving graph") != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!applied) throw Error("reload did not apply within 120 s");
    total_ms.push_back(1e3 * (now_seconds() - t0));
    std::fprintf(stderr, "edit %lld: %.0f ms\n", static_cast<long long>(i + 1), total_ms.back());
  }

  std::printf("## Live reconfiguration: saving the graph to the new placement in use\n\n");
  std::printf("model: %s (%lld MoE layers x %d experts); 3 processes on loopback; %s\n\n",
              opts.model.c_str(), static_cast<long long>(cfg.moe_layer_count()), experts,
              cpu_model().c_str());
  std::printf("| measurement | median | min | max |\n|---|---|---|---|\n");
  std::printf("| file saved -> placement swapped (%lld edits) | %.0f ms | %.0f ms | %.0f ms |\n",
              static_cast<long long>(opts.edits), median(total_ms),
              *std::min_element(total_ms.begin(), total_ms.end()),
              *std::max_element(total_ms.begin(), total_ms.end()));
  std::printf(
      "| of which: loading the moved experts' weights (measured apart) | %.0f ms | %.0f ms | "
      "%.0f ms |\n",
      median(load_ms), *std::min_element(load_ms.begin(), load_ms.end()),
      *std::max_element(load_ms.begin(), load_ms.end()));
  std::printf("| file saved -> swapped, weight loading excluded | %.0f ms | | |\n\n",
              median(total_ms) - median(load_ms));
  std::printf(
      "Each edit moves 2 experts of every MoE layer between the expert nodes. Every node looks at "
      "the file every 250 ms; the router then waits for both expert nodes' heartbeats (every "
      "500 ms by default) to report the new graph before it swaps between two steps. Bar: under "
      "2 s excluding weight loading.\n");
  node.reset();
  return 0;
}

}  // namespace moeflow::bench
