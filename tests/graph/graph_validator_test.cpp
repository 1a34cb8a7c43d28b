// load_graph / validate_graph: the checks against the model (ids exist, listed layers are MoE
// layers, every expert has a shard), with their messages and line:col, and a broken model path.
#include <gtest/gtest.h>

#include "model/model_config.h"
#include "tests/graph/graph_test_util.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

using test_support::has_error;
using test_support::has_hint;
using test_support::load_errors;
using test_support::model_table;
using test_support::write_toml;

class GraphValidator : public ::testing::Test {
 protected:
  std::vector<Diagnostic> errors(const std::string& text) {
    return load_errors(write_toml(dir_.path(), "g.toml", text));
  }
  std::string file() const { return (dir_.path() / "g.toml").string(); }

  test_support::TempDir dir_;
};

// Two shards (lines 3-5 and 6-8) under the mixtral model: 3 MoE layers x 8 experts.
std::string two_shards(const std::string& a_experts, const std::string& b_experts,
                       const std::string& b_layers = "all") {
  return model_table() +                                                                  // 1-2
         "[shards.a]\nexperts = \"" + a_experts + "\"\nlayers = \"all\"\n" +              // 3-5
         "[shards.b]\nexperts = \"" + b_experts + "\"\nlayers = \"" + b_layers + "\"\n";  // 6-8
}

TEST_F(GraphValidator, ACompleteSplitLoads) {
  const auto ds = errors(two_shards("0-3", "4-7"));
  EXPECT_TRUE(ds.empty()) << test_support::describe(ds);
  const GraphSpec g = load_graph(dir_.path() / "g.toml");
  EXPECT_EQ(g.shards.size(), 2u);
  EXPECT_EQ(g.model.path, test_support::golden_dir("mixtral"));
}

TEST_F(GraphValidator, ExpertsOutsideTheModelNameItsCount) {
  const auto ds = errors(two_shards("0-3", "4-9"));
  ASSERT_EQ(ds.size(), 1u) << test_support::describe(ds);
  EXPECT_TRUE(has_error(ds, 7, 11,
                        "shard \"b\": experts 8-9 are outside the model, which has 8 experts per "
                        "MoE layer (0-7)"));
  EXPECT_EQ(ds[0].where.file, file());
}

TEST_F(GraphValidator, LayersOutsideTheModelNameItsCount) {
  const auto ds = errors(two_shards("all", "0", "1,3"));
  EXPECT_TRUE(
      has_error(ds, 8, 10, "shard \"b\": layer 3 is outside the model, which has 3 layers (0-2)"));
}

TEST_F(GraphValidator, ListingADenseLayerIsAnError) {
  // DeepSeek golden: layer 0 is dense (first_k_dense_replace = 1); Qwen2-MoE golden: layer 1.
  auto ds = errors(model_table("deepseek") + "[shards.a]\nlayers = \"0-2\"\nexperts = \"all\"\n");
  ASSERT_EQ(ds.size(), 1u) << test_support::describe(ds);
  EXPECT_TRUE(has_error(ds, 4, 10, "shard \"a\": layer 0 is dense in this model"));
  EXPECT_TRUE(has_hint(ds, "its MoE layers are 1-2"));

  ds = errors(model_table("qwen2_moe") + "[shards.a]\nlayers = \"0-2\"\nexperts = \"all\"\n");
  EXPECT_TRUE(has_error(ds, 4, 10, "layer 1 is dense"));
  EXPECT_TRUE(has_hint(ds, "its MoE layers are 0,2"));

  // "all" means every MoE layer, so it is fine with dense layers around.
  EXPECT_TRUE(errors(model_table("deepseek") + "[shards.a]\nexperts = \"all\"\n").empty());
}

TEST_F(GraphValidator, ExpertsOwnedByNoShardAreGroupedCompactly) {
  auto ds = errors(two_shards("0-3", "5"));
  ASSERT_EQ(ds.size(), 1u) << test_support::describe(ds);
  EXPECT_TRUE(has_error(ds, 3, 1, "layers 0-2: experts 4,6-7 are owned by no shard"));

  ds = errors(two_shards("0-3", "4-7", "0-1"));
  ASSERT_EQ(ds.size(), 1u) << test_support::describe(ds);
  EXPECT_TRUE(has_error(ds, 3, 1, "layer 2: experts 4-7 are owned by no shard"));

  ds = errors(two_shards("0-6", "7", "0,2"));
  EXPECT_TRUE(has_error(ds, 3, 1, "layer 1: expert 7 is owned by no shard"));

  // Explicit nodes and no shards at all.
  ds = errors(model_table() +
              "[nodes.r]\nhost = \"h\"\ncontrol_port = 1000\ndata_port = 1001\nrouter = true\n");
  EXPECT_TRUE(has_error(ds, 1, 1, "layers 0-2: experts 0-7 are owned by no shard"));
  EXPECT_TRUE(has_hint(ds, "add [shards.NAME] tables"));
}

TEST_F(GraphValidator, ReplicasAreFine) {
  EXPECT_TRUE(errors(two_shards("0-5", "3-7")).empty());
}

TEST_F(GraphValidator, AMissingModelIsReportedAtItsPath) {
  const auto ds = errors("[model]\npath = \"no/such/model\"\n");
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_TRUE(has_error(ds, 2, 8, "cannot read the model"));
  EXPECT_NE(ds[0].message.find("no/such/model/config.json"), std::string::npos) << ds[0].message;
}

TEST_F(GraphValidator, ModelPathIsRelativeToTheGraphFile) {
  test_support::copy_folder(test_support::golden_dir("olmoe"), dir_.path() / "models" / "olmoe");
  std::filesystem::create_directories(dir_.path() / "configs");
  const auto file =
      write_toml(dir_.path() / "configs", "g.toml", "[model]\npath = \"../models/olmoe\"\n");
  const GraphSpec g = load_graph(file);
  EXPECT_EQ(g.model.path, (dir_.path() / "models" / "olmoe").lexically_normal());
}

TEST_F(GraphValidator, SchemaAndModelProblemsAreReportedTogether) {
  // A typo'd key, a port clash, and an expert beyond the model: one run shows all three.
  const auto ds = errors(model_table() +                                     // 1-2
                         "[api]\nport = 9100\n" +                            // 3-4
                         "[shards.a]\nexperts = \"0-8\"\nlayrs = \"0\"\n");  // 5-7
  EXPECT_TRUE(has_error(ds, 4, 8, "is used twice"));
  EXPECT_TRUE(has_error(ds, 6, 11, "expert 8 is outside the model"));
  EXPECT_TRUE(has_error(ds, 7, 1, "unknown key \"layrs\""));
}

TEST_F(GraphValidator, ABrokenRangeSkipsTheCoverageCheckInsteadOfInventingGaps) {
  const auto ds = errors(two_shards("0-3", "4-x"));
  ASSERT_EQ(ds.size(), 1u) << test_support::describe(ds);
  EXPECT_TRUE(has_error(ds, 7, 12, "\"4-x\" is not an id"));
}

TEST_F(GraphValidator, AMissingFileIsOneDiagnostic) {
  const auto ds = load_errors(dir_.path() / "nope.toml");
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].where.line, 0);
  EXPECT_EQ(format_location(ds[0].where), (dir_.path() / "nope.toml").string());
  EXPECT_NE(ds[0].message.find("cannot read the graph file"), std::string::npos);
}

TEST(GraphValidate, ValidateGraphOnAParsedGraph) {
  const ModelConfig model = load_model_config(test_support::golden_dir("mixtral"));
  const GraphSpec g =
      parse_graph("[model]\npath = \"m\"\n[shards.a]\nexperts = \"1-7\"\n", "g.toml");
  const auto ds = validate_graph(g, model);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].message, "layers 0-2: expert 0 is owned by no shard");
  EXPECT_TRUE(validate_graph(parse_graph("[model]\npath = \"m\"\n", "g.toml"), model).empty());
}

}  // namespace
}  // namespace moeflow
