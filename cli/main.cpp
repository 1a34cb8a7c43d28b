// moeflow: serve Mixture-of-Experts models. Dispatches to the subcommands.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"

namespace {

constexpr const char* kUsage =
    "Usage: moeflow <command> [options]\n"
    "\n"
    "Commands:\n"
    "  generate   generate tokens from a Hugging Face MoE checkpoint\n"
    "  inspect    describe a checkpoint: architecture, experts, parameters, memory\n"
    "  bench      measure decode, prefill and transport speed against this machine's limits\n"
    "  graph      check a deployment graph (TOML), draw it, or list its Prometheus targets\n"
    "  serve      run one expert node of a deployment graph (multi-node)\n"
    "\n"
    "Run `moeflow <command> --help` for the options of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (command == "generate") return moeflow::cli::run_generate(args);
    if (command == "inspect") return moeflow::cli::run_inspect(args);
    if (command == "bench") return moeflow::cli::run_bench(args);
    if (command == "graph") return moeflow::cli::run_graph(args);
    if (command == "serve") return moeflow::cli::run_serve(args);
    std::fprintf(stderr, "moeflow: unknown command \"%s\"\n\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const moeflow::Error& e) {
    std::fprintf(stderr, "moeflow %s: error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
