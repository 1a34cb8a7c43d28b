// Bad checkpoints and bad requests give one clear error naming the file and tensor, never a
// crash: each test breaks a copy of a golden fixture in one way.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "model/engine.h"
#include "tests/support/golden.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

namespace fs = std::filesystem;
using test_support::copy_folder;
using test_support::edit_config;
using test_support::golden_dir;
using test_support::TempDir;

// The message of the moeflow::Error that loading `dir` throws ("" when it loads).
std::string load_error(const fs::path& dir) {
  try {
    Engine::load(dir, {"auto", false});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class BrokenCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override { copy_folder(golden_dir(fixture()), dir()); }
  virtual std::string fixture() const { return "mixtral"; }
  fs::path dir() const { return temp_.path() / "model"; }
  TempDir temp_;
};

class BrokenShardedCheckpoint : public BrokenCheckpoint {
  std::string fixture() const override { return "qwen2_moe"; }
};

TEST_F(BrokenCheckpoint, IntactCopyLoads) {
  EXPECT_EQ(load_error(dir()), "");
}

TEST_F(BrokenCheckpoint, ConfigThatContradictsTheWeightsNamesTensorAndShapes) {
  edit_config(dir(), "hidden_size", "128");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("model.embed_tokens.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("expected [320, 128]"), std::string::npos) << err;
}

TEST_F(BrokenCheckpoint, MoreExpertsThanTheWeightsHoldNamesTheGateShape) {
  edit_config(dir(), "num_local_experts", "9");
  const std::string err = load_error(dir());
  EXPECT_NE(
      err.find("model.layers.0.block_sparse_moe.gate.weight has shape [8, 64], expected [9, 64]"),
      std::string::npos)
      << err;
}

TEST_F(BrokenCheckpoint, MissingWeightsFile) {
  fs::remove(dir() / "model.safetensors");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("no model.safetensors"), std::string::npos) << err;
}

TEST_F(BrokenCheckpoint, MissingConfig) {
  fs::remove(dir() / "config.json");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("config.json"), std::string::npos) << err;
}

TEST_F(BrokenCheckpoint, TruncatedWeightsFile) {
  const fs::path f = dir() / "model.safetensors";
  fs::resize_file(f, fs::file_size(f) / 2);
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("exceed"), std::string::npos) << err;
}

TEST_F(BrokenCheckpoint, UnknownArchitectureIsRefusedByName) {
  edit_config(dir(), "architectures", "[\"GptOssForCausalLM\"]");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("GptOssForCausalLM is not supported"), std::string::npos) << err;
}

TEST_F(BrokenCheckpoint, UnsupportedRopeScalingIsRefusedByName) {
  edit_config(dir(), "rope_parameters", R"({"rope_type": "yarn", "factor": 4.0})");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("rope type \"yarn\" is not supported"), std::string::npos) << err;
}

TEST_F(BrokenShardedCheckpoint, MissingShardIsNamed) {
  fs::remove(dir() / "model-00002-of-00003.safetensors");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("model-00002-of-00003.safetensors"), std::string::npos) << err;
}

TEST_F(BrokenShardedCheckpoint, DenseLayerDeclaredMoeNamesTheMissingTensor) {
  edit_config(dir(), "mlp_only_layers", "[]");
  const std::string err = load_error(dir());
  EXPECT_NE(err.find("tensor model.layers.1.mlp.gate.weight is missing"), std::string::npos) << err;
}

TEST_F(BrokenShardedCheckpoint, IntactShardedCopyLoads) {
  EXPECT_EQ(load_error(dir()), "");
}

TEST(EngineRequests, TokenOutsideTheVocabularyIsRefusedAndTheEngineKeepsWorking) {
  auto engine = Engine::load(golden_dir("mixtral"), {"auto", false});
  try {
    engine->forward({{7, {1, 2, 320}}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 320 is outside the vocabulary"),
              std::string::npos)
        << e.what();
  }
  const auto g = test_support::load_golden("mixtral");
  const auto logits = engine->forward({{8, g.prompts[0]}});
  const int64_t last = static_cast<int64_t>(g.prompts[0].size()) - 1;
  EXPECT_LE(test_support::max_abs_diff(logits.data(), g.prefill[0].data() + last * g.vocab, g.vocab),
            1e-4 * g.logits_scale);
}

TEST(EngineRequests, EmptyAndDuplicateSequencesAreRefused) {
  auto engine = Engine::load(golden_dir("mixtral"), {"auto", false});
  EXPECT_THROW(engine->forward({{1, {}}}), Error);
  EXPECT_THROW(engine->forward({{1, {5}}, {1, {6}}}), Error);
}

TEST(EngineRequests, BadDtypeIsRefused) {
  try {
    Engine::load(golden_dir("mixtral"), {"fp8", false});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos);
  }
}

}  // namespace
}  // namespace moeflow
