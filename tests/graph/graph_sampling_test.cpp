// The [sampling] table: defaults, every key, mistakes reported at their place, its place in
// graph_hash, and that an edit is applied live.
#include <gtest/gtest.h>

#include "graph/graph_plan.h"
#include "model/model_config.h"
#include "tests/graph/graph_test_util.h"

namespace moeflow {
namespace {

using test_support::has_error;
using test_support::has_hint;
using test_support::parse_errors;

const std::string kHead = "[model]\npath = \"m\"\n[sampling]\n";  // keys from line 4

TEST(GraphSampling, DefaultsAreTheOpenAiOnesAndEveryKeyIsRead) {
  const GraphSpec d = parse_graph("[model]\npath = \"m\"\n", "g.toml");
  EXPECT_EQ(d.sampling.temperature, 1.0);
  EXPECT_EQ(d.sampling.top_p, 1.0);
  EXPECT_EQ(d.sampling.top_k, 0);
  EXPECT_EQ(d.sampling.max_tokens, 0);
  const GraphSpec g =
      parse_graph(kHead + "temperature = 0\ntop_p = 0.9\ntop_k = 40\nmax_tokens = 256\n", "g.toml");
  EXPECT_EQ(g.sampling.temperature, 0.0);
  EXPECT_DOUBLE_EQ(g.sampling.top_p, 0.9);
  EXPECT_EQ(g.sampling.top_k, 40);
  EXPECT_EQ(g.sampling.max_tokens, 256);
}

TEST(GraphSampling, MistakesAreReportedWhereTheyAre) {
  EXPECT_TRUE(has_error(parse_errors(kHead + "temperature = 2.5\n"), 4, 15, "0 to 2"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "top_p = 0\n"), 4, 9, "above 0"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "top_k = -1\n"), 4, 9, ">= 0"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "max_tokens = \"64\"\n"), 4, 14, "integer"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "temprature = 0\n"), 4, 1, "unknown key"));
  EXPECT_TRUE(has_hint(parse_errors(kHead + "temprature = 0\n"), "did you mean \"temperature\""));
}

TEST(GraphSampling, OnlyValuesOffTheDefaultsChangeTheHashAndEditsAreLive) {
  const std::string base = test_support::model_table();
  const GraphSpec plain = parse_graph(base, "a.toml");
  const GraphSpec same = parse_graph(base + "\n[sampling]\ntemperature = 1.0\n", "b.toml");
  const GraphSpec greedy = parse_graph(base + "\n[sampling]\ntemperature = 0\n", "c.toml");
  EXPECT_EQ(graph_hash(plain), graph_hash(same));
  EXPECT_NE(graph_hash(plain), graph_hash(greedy));
  const GraphPlan p = plan_graph_change(plain, greedy, load_model_config(plain.model.path));
  EXPECT_TRUE(p.live()) << format_plan(p);
  ASSERT_EQ(p.settings.size(), 1u);
  EXPECT_EQ(p.settings[0], "sampling.temperature: 1 -> 0");
}

}  // namespace
}  // namespace moeflow
