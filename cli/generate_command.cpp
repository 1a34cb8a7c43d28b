// `moeflow generate`: load a checkpoint and generate from token ids.
#include <chrono>
#include <cstdio>

#include "actors/actor_system_setup.h"
#include "actors/router_node.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "core/error.h"
#include "graph/device_check.h"
#include "graph/graph.h"
#include "model/engine.h"
#include "model/generator.h"

namespace moeflow::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"model", "DIR", "Hugging Face checkpoint folder (config.json + *.safetensors)", ""},
    {"graph", "FILE", "run as the router node of this deployment graph instead of --model", ""},
    {"connect-timeout", "MS", "with --graph: how long to wait for the expert nodes", "10000"},
    {"prompt-ids", "IDS", "prompt token ids, comma-separated, e.g. 1,2,3", ""},
    {"max-tokens", "N", "tokens to generate", "16"},
    {"temperature", "T", "sampling temperature; 0 is greedy", "0"},
    {"top-p", "P", "nucleus sampling: keep the smallest set of tokens with mass >= P", "1"},
    {"top-k", "K", "keep the K most likely tokens; 0 keeps all", "0"},
    {"seed", "S", "random seed for sampling", "0"},
    {"dtype", "TYPE", "weights for compute: f32, bf16 (fp32 accumulation) or auto", "auto"},
    {"device", "DEV", "with --model: cpu, or cuda:N to run the whole model on that GPU (bf16)",
     "cpu"},
    {"ignore-eos", "", "keep generating past the end-of-sequence token", ""},
    {"quiet", "", "no loading progress or timing on stderr", ""},
};

// Runs the request on the router node of a deployment graph: actors in this process, expert
// shards here or on the graph's other nodes.
GenerationResult generate_on_graph(const std::string& file, const GenerationRequest& request,
                                   std::chrono::milliseconds connect_timeout) {
  const GraphSpec graph = load_graph(file);
  ActorSystemConfig cfg;
  caf::actor_system system{cfg};
  auto node = start_router_node(system, graph, connect_timeout);
  caf::scoped_actor self{system};
  GenerationResult result;
  std::string error;
  self->request(node->pipeline.scheduler, caf::infinite, generate_atom::value,
                GenerationRequestPtr(std::make_shared<GenerationRequest>(request)))
      .receive([&](const GenerationResultPtr& r) { result = *r; },
               [&](caf::error& err) { error = describe(err); });
  node.reset();
  if (!error.empty()) throw Error(error);
  return result;
}

}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  if (print_help_if_asked(argv, "moeflow generate --model DIR --prompt-ids 1,2,3 [options]",
                          "Generates tokens on the CPU and prints their ids, one line.", kOptions))
    return 0;
  const Args args(argv, kOptions);
  GenerationRequest request;
  request.prompt = parse_id_list(args.require("prompt-ids"), "prompt-ids");
  request.max_tokens = args.get_int("max-tokens", 16);
  request.sampling.temperature = static_cast<float>(args.get_double("temperature", 0.0));
  request.sampling.top_p = static_cast<float>(args.get_double("top-p", 1.0));
  request.sampling.top_k = args.get_int("top-k", 0);
  request.sampling.seed = static_cast<uint64_t>(args.get_int("seed", 0));
  request.stop_at_eos = !args.has("ignore-eos");
  validate(request.sampling);
  const bool quiet = args.has("quiet");

  const auto start = std::chrono::steady_clock::now();
  std::vector<GenerationResult> results;
  std::string compute = "actors";
  if (auto graph = args.get("graph")) {
    if (args.has("model")) throw Error("give either --model or --graph, not both");
    results.push_back(generate_on_graph(
        *graph, request, std::chrono::milliseconds(args.get_int("connect-timeout", 10000))));
  } else {
    EngineOptions opts;
    opts.dtype = args.get("dtype", "auto");
    opts.progress = !quiet;
    const std::string device = args.get("device", "cpu");
    if (!valid_device_name(device))
      throw Error("--device " + device + ": expected cpu or cuda:N, e.g. cuda:0");
    opts.cuda_device = cuda_device_index(device);
    auto engine = Engine::load(args.require("model"), opts);
    compute = compute_type_name(engine->compute_type());
    results = generate(*engine, {request});
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& r = results.front();
  for (size_t i = 0; i < r.tokens.size(); ++i) std::printf(i ? ",%d" : "%d", r.tokens[i]);
  std::printf("\n");
  if (!quiet)
    std::fprintf(stderr, "generated %zu tokens in %.3f s (finish: %s, compute %s)\n",
                 r.tokens.size(), secs, r.finish_reason.c_str(), compute.c_str());
  return 0;
}

}  // namespace moeflow::cli
