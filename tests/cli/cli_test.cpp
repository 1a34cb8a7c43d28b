// The `moeflow` binary as a user runs it: help, generate, inspect, and clear errors.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "tests/support/golden.h"
#include "tests/support/run_command.h"

namespace moeflow {
namespace {

using test_support::contains;
using Result = test_support::CommandResult;

Result run(const std::string& args) {
  return test_support::run_command(std::string(MOEFLOW_BINARY) + " " + args);
}

std::string join(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  for (size_t i = 0; i < ids.size(); ++i) out << (i ? "," : "") << ids[i];
  return out.str();
}

TEST(Cli, HelpListsCommands) {
  const Result r = run("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* c : {"generate", "inspect", "bench"}) EXPECT_TRUE(contains(r.output, c)) << c;
  EXPECT_TRUE(contains(run("generate --help").output, "--prompt-ids"));
}

TEST(Cli, NoCommandAndUnknownCommandExitWithUsage) {
  EXPECT_EQ(run("").exit_code, 2);
  const Result r = run("serve-all");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown command")) << r.output;
}

TEST(Cli, GenerateGreedyPrintsTheReferenceTokens) {
  const auto g = test_support::load_golden("olmoe");
  const Result r = run("generate --quiet --model " + g.dir.string() + " --prompt-ids " +
                       join(g.prompts[1]) + " --max-tokens " + std::to_string(g.greedy[1].size()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, join(g.greedy[1]) + "\n");
}

TEST(Cli, GenerateOnADeviceThisMachineLacksSaysSo) {
  const std::string model = test_support::golden_dir("mixtral").string();
  const Result bad = run("generate --quiet --model " + model + " --prompt-ids 1 --device gpu");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(contains(bad.output, "--device gpu: expected cpu or cuda:N")) << bad.output;
  const Result missing =
      run("generate --quiet --model " + model + " --prompt-ids 1 --device cuda:99");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_TRUE(contains(missing.output, "no CUDA device cuda:99")) << missing.output;
}

TEST(Cli, SampledGenerationIsReproducibleWithASeed) {
  const std::string args = "generate --quiet --model " +
                           test_support::golden_dir("mixtral").string() +
                           " --prompt-ids 1,2,3 --max-tokens 12 --temperature 1.0 --top-p 0.9 ";
  const Result a = run(args + "--seed 7"), b = run(args + "--seed 7"), c = run(args + "--seed 8");
  EXPECT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output, c.output);
}

TEST(Cli, InspectDescribesTheCheckpoint) {
  const Result r = run("inspect --model " + test_support::golden_dir("deepseek").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "DeepseekForCausalLM")) << r.output;
  EXPECT_TRUE(contains(r.output, "3 (2 MoE, 1 dense)")) << r.output;
  EXPECT_TRUE(contains(r.output, "top-2")) << r.output;
  EXPECT_TRUE(contains(r.output, "F16")) << r.output;
  EXPECT_TRUE(contains(r.output, "active per token")) << r.output;
}

TEST(Cli, MisspeltOptionGetsASuggestion) {
  const Result r = run("generate --modle x --prompt-ids 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "did you mean --model?")) << r.output;
}

TEST(Cli, BadValuesAreNamed) {
  const std::string model = test_support::golden_dir("mixtral").string();
  Result r = run("generate --model " + model + " --prompt-ids 1,x,3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "\"x\" is not a token id")) << r.output;
  r = run("generate --model " + model + " --prompt-ids 1 --temperature -1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "temperature")) << r.output;
  r = run("generate --model /nonexistent/model --prompt-ids 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "/nonexistent/model")) << r.output;
}

// A small shape, so that on a GPU machine it runs in a moment; without a GPU it says why.
TEST(Cli, CudaExpertBenchRunsOrSaysWhyNot) {
  const Result r =
      run("bench cuda-experts --rows 1,70 --experts 4 --hidden 128 --inter 96 --repeats 2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "| 70 | 140 |") || contains(r.output, "skipped: no CUDA device"))
      << r.output;
}

}  // namespace
}  // namespace moeflow
