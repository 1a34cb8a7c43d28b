#pragma once
// The subcommands of the `moeflow` binary. Each takes the arguments after its name and returns
// the process exit code; errors are thrown as moeflow::Error and printed by main.
#include <string>
#include <vector>

namespace moeflow::cli {

int run_generate(const std::vector<std::string>& args);
int run_inspect(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_graph(const std::vector<std::string>& args);
int run_serve(const std::vector<std::string>& args);

}  // namespace moeflow::cli
