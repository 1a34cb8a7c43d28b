// The [speculative] table: defaults, every key and each form of `resident`, mistakes reported at
// their place, checks against the model, its place in graph_hash, and that an edit is live.
#include <gtest/gtest.h>

#include "graph/graph_plan.h"
#include "model/model_config.h"
#include "tests/graph/graph_test_util.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

using test_support::has_error;
using test_support::has_hint;
using test_support::parse_errors;

const std::string kHead = "[model]\npath = \"m\"\n[speculative]\n";  // keys from line 4

TEST(GraphSpeculative, DefaultsWhenAbsent) {
  const GraphSpec g = parse_graph("[model]\npath = \"m\"\n", "g.toml");
  EXPECT_FALSE(g.speculative.enabled);
  EXPECT_EQ(g.speculative.draft_top_k, 1);
  EXPECT_TRUE(g.speculative.resident.empty());
  EXPECT_EQ(g.speculative.resident_count, 0);
  EXPECT_TRUE(g.speculative.adaptive);
  EXPECT_EQ(g.speculative.gamma, 4);
}

TEST(GraphSpeculative, ReadsEveryKeyAndEachFormOfResident) {
  const GraphSpec g = parse_graph(kHead +
                                      "enabled = true\ndraft_top_k = 2\nresident = [\"0-1\", "
                                      "\"\", \"3,5\"]\ngamma = 3\nadaptive = false\n"
                                      "gamma_min = 2\ngamma_max = 6\ndraft_context = 0\n",
                                  "g.toml");
  const SpeculativeSpec& sp = g.speculative;
  EXPECT_TRUE(sp.enabled);
  EXPECT_EQ(sp.draft_top_k, 2);
  EXPECT_FALSE(sp.resident_shared);
  ASSERT_EQ(sp.resident.size(), 3u);
  EXPECT_EQ(sp.resident[0], (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(sp.resident[1].empty());
  EXPECT_EQ(sp.resident[2], (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(sp.gamma, 3);
  EXPECT_FALSE(sp.adaptive);
  EXPECT_EQ(sp.gamma_min, 2);
  EXPECT_EQ(sp.gamma_max, 6);
  EXPECT_EQ(sp.draft_context, 0);

  const GraphSpec shared = parse_graph(kHead + "resident = \"0-3\"\n", "g.toml");
  EXPECT_TRUE(shared.speculative.resident_shared);
  EXPECT_EQ(shared.speculative.resident, (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}}));
  const GraphSpec counted = parse_graph(kHead + "resident = 4\n", "g.toml");
  EXPECT_EQ(counted.speculative.resident_count, 4);
  EXPECT_TRUE(counted.speculative.resident.empty());
}

TEST(GraphSpeculative, MistakesAreReportedWhereTheyAre) {
  EXPECT_TRUE(has_error(parse_errors(kHead + "gamma = 9\n"), 4, 9, "outside 1-8"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "draft_top_k = -1\n"), 4, 15, "outside 0-"));
  EXPECT_TRUE(
      has_error(parse_errors(kHead + "gamma_min = 5\ngamma_max = 2\n"), 5, 13, "above gamma_max"));
  EXPECT_TRUE(
      has_error(parse_errors(kHead + "gamma = 6\ngamma_max = 4\n"), 4, 9, "outside gamma_min"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "resident = \"3-1\"\n"), 4, 12, "backwards"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "resident = [\"0-1\", 5]\n"), 4, 20, "a string"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "resident = true\n"), 4, 12, "an integer, a string"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "resident = 0\n"), 4, 12, "must be positive"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "resident = \"all\"\n"), 4, 12, "no resident set"));
  EXPECT_TRUE(has_error(parse_errors(kHead + "adaptive = \"no\"\n"), 4, 12, "adaptive"));
  const auto typo = parse_errors(kHead + "enabld = true\n");
  EXPECT_TRUE(has_error(typo, 4, 1, "unknown key \"enabld\" in [speculative]"));
  EXPECT_TRUE(has_hint(typo, "did you mean \"enabled\"?"));
}

// Against the golden Mixtral: 3 layers, 8 experts, top-2.
TEST(GraphSpeculative, ChecksAgainstTheModel) {
  test_support::TempDir dir;
  const auto errors = [&](const std::string& keys) {
    return test_support::load_errors(test_support::write_toml(
        dir.path(), "g.toml", test_support::model_table() + "[speculative]\n" + keys));
  };
  EXPECT_TRUE(has_error(errors("draft_top_k = 3\n"), 4, 15, "above the model's top-k of 2"));
  EXPECT_TRUE(
      has_error(errors("enabled = true\ndraft_top_k = 2\n"), 5, 15, "would be the full model"));
  EXPECT_TRUE(has_error(errors("resident = \"0-9\"\n"), 4, 12, "experts 8-9 are outside"));
  EXPECT_TRUE(has_error(errors("resident = [\"0-1\"]\n"), 4, 12, "lists 1 layers"));
  EXPECT_TRUE(has_error(errors("resident = [\"0-1\", \"\", \"2\"]\n"), 4, 12,
                        "layer 1: an MoE layer with no resident expert"));
  EXPECT_TRUE(has_error(errors("resident = 9\n"), 4, 12, "more than the model's 8 experts"));
  EXPECT_TRUE(
      errors("enabled = true\ndraft_top_k = 2\nresident = [\"0-3\", \"4-7\", \"0,7\"]\n").empty());
  EXPECT_TRUE(errors("enabled = true\n").empty());  // top-1 drafter by default
}

TEST(GraphSpeculative, DefaultSectionKeepsTheHashAndAnyChangeIsLive) {
  const std::string base = test_support::model_table();
  const GraphSpec none = parse_graph(base, "g.toml");
  const GraphSpec defaults =
      parse_graph(base + "[speculative]\nenabled = false\ngamma = 4\n", "g.toml");
  const GraphSpec on = parse_graph(base + "[speculative]\nenabled = true\ngamma = 2\n", "g.toml");
  EXPECT_EQ(graph_hash(none), graph_hash(defaults));
  EXPECT_NE(graph_hash(none), graph_hash(on));
  const GraphPlan p = plan_graph_change(none, on, load_model_config(on.model.path));
  EXPECT_TRUE(p.live()) << format_plan(p);
  EXPECT_EQ(p.settings,
            (std::vector<std::string>{"speculative.enabled: 0 -> 1", "speculative.gamma: 4 -> 2"}));
  const GraphSpec resident =
      parse_graph(base + "[speculative]\nenabled = true\nresident = \"0-3\"\n", "g.toml");
  const GraphPlan q = plan_graph_change(on, resident, load_model_config(on.model.path));
  EXPECT_TRUE(q.live());
  EXPECT_NE(format_plan(q).find("speculative.resident: every expert -> 0-3"), std::string::npos)
      << format_plan(q);
}

}  // namespace
}  // namespace moeflow
