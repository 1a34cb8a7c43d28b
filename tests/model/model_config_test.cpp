// parse_model_config / load_model_config: a minimal config of each supported family parses into
// the right fields, and every refusal throws moeflow::Error naming the source and the field.
#include "model/model_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace moeflow {
namespace {

using nlohmann::json;

const std::string kSource = "some/dir/config.json";

json mixtral_config() {
  return {{"architectures", json::array({"MixtralForCausalLM"})},
          {"model_type", "mixtral"},
          {"vocab_size", 1000},
          {"hidden_size", 128},
          {"num_hidden_layers", 4},
          {"num_attention_heads", 8},
          {"num_key_value_heads", 2},
          {"num_local_experts", 8},
          {"num_experts_per_tok", 2},
          {"intermediate_size", 256},
          {"max_position_embeddings", 32768},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 1000000.0},
          {"sliding_window", 4096},
          {"hidden_act", "silu"},
          {"bos_token_id", 1},
          {"eos_token_id", 2}};
}

json qwen2_moe_config() {
  return {{"architectures", json::array({"Qwen2MoeForCausalLM"})},
          {"model_type", "qwen2_moe"},
          {"vocab_size", 1000},
          {"hidden_size", 64},
          {"num_hidden_layers", 6},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 4},
          {"num_experts", 60},
          {"num_experts_per_tok", 4},
          {"moe_intermediate_size", 32},
          {"shared_expert_intermediate_size", 128},
          {"intermediate_size", 96},
          {"decoder_sparse_step", 2},
          {"mlp_only_layers", json::array({3})},
          {"norm_topk_prob", false},
          {"use_sliding_window", false},
          {"eos_token_id", json::array({151643, 151645})}};
}

json olmoe_config() {
  return {{"architectures", json::array({"OlmoeForCausalLM"})},
          {"model_type", "olmoe"},
          {"vocab_size", 500},
          {"hidden_size", 64},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_experts", 64},
          {"num_experts_per_tok", 8},
          {"intermediate_size", 32},
          {"clip_qkv", 8.0},
          {"tie_word_embeddings", true},
          {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 500000.0}}}};
}

json deepseek_config() {
  return {{"architectures", json::array({"DeepseekForCausalLM"})},
          {"model_type", "deepseek"},
          {"vocab_size", 1000},
          {"hidden_size", 64},
          {"num_hidden_layers", 6},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"n_routed_experts", 64},
          {"n_shared_experts", 2},
          {"num_experts_per_tok", 6},
          {"moe_intermediate_size", 32},
          {"intermediate_size", 256},
          {"first_k_dense_replace", 1},
          {"moe_layer_freq", 2},
          {"scoring_func", "softmax"},
          {"norm_topk_prob", true}};
}

ModelConfig parse(const json& j) {
  return parse_model_config(j.dump(), kSource);
}

// Expects parse to throw moeflow::Error whose message contains the source and every part.
void expect_text_refused(const std::string& text, std::initializer_list<std::string> parts) {
  try {
    parse_model_config(text, kSource);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(kSource), std::string::npos) << message;
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos)
          << "missing \"" << part << "\" in: " << message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-moeflow exception (" << e.what() << ") for: " << text;
  }
}

void expect_refused(const json& j, std::initializer_list<std::string> parts) {
  expect_text_refused(j.dump(), parts);
}

// ---- accepted configs -----------------------------------------------------------------------

TEST(ModelConfigTest, ParsesMixtral) {
  const ModelConfig c = parse(mixtral_config());
  EXPECT_EQ(c.family, Family::mixtral);
  EXPECT_EQ(c.architecture, "MixtralForCausalLM");
  EXPECT_EQ(c.model_type, "mixtral");
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.hidden_size, 128);
  EXPECT_EQ(c.num_layers, 4);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);  // hidden / heads
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 1000000.0);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.top_k, 2);
  EXPECT_EQ(c.expert_intermediate, 256);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.shared_intermediate, 0);
  EXPECT_FALSE(c.shared_expert_gated);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.layer_is_moe, std::vector<bool>(4, true));
  EXPECT_EQ(c.moe_layer_count(), 4);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(family_name(c.family), "mixtral");
}

// A layer is MoE when (layer + 1) % decoder_sparse_step == 0 and it is not in mlp_only_layers.
TEST(ModelConfigTest, ParsesQwen2Moe) {
  const ModelConfig c = parse(qwen2_moe_config());
  EXPECT_EQ(c.family, Family::qwen2_moe);
  EXPECT_EQ(c.num_experts, 60);
  EXPECT_EQ(c.top_k, 4);
  EXPECT_EQ(c.expert_intermediate, 32);
  EXPECT_EQ(c.shared_intermediate, 128);
  EXPECT_TRUE(c.shared_expert_gated);
  EXPECT_EQ(c.dense_intermediate, 96);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_EQ(c.layer_is_moe, (std::vector<bool>{false, true, false, false, false, true}));
  EXPECT_EQ(c.moe_layer_count(), 2);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{151643, 151645}));
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_EQ(c.rope_theta, 10000.0);  // the default
  EXPECT_EQ(c.sliding_window, 0);

  json j = qwen2_moe_config();
  j.erase("decoder_sparse_step");
  j["mlp_only_layers"] = json::array({0, 5});
  j["norm_topk_prob"] = true;
  const ModelConfig d = parse(j);
  EXPECT_EQ(d.layer_is_moe, (std::vector<bool>{false, true, true, true, true, false}));
  EXPECT_TRUE(d.norm_topk_prob);
}

TEST(ModelConfigTest, ParsesOlmoe) {
  const ModelConfig c = parse(olmoe_config());
  EXPECT_EQ(c.family, Family::olmoe);
  EXPECT_EQ(c.num_kv_heads, 4);  // defaults to the number of heads
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.top_k, 8);
  EXPECT_EQ(c.expert_intermediate, 32);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FLOAT_EQ(c.clip_qkv, 8.0f);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 500000.0);  // from rope_parameters
  EXPECT_EQ(c.layer_is_moe, std::vector<bool>(2, true));
  EXPECT_TRUE(c.eos_token_ids.empty());
}

// Layer l is MoE when l >= first_k_dense_replace and l % moe_layer_freq == 0; the shared experts
// form one MLP of n_shared_experts * moe_intermediate_size.
TEST(ModelConfigTest, ParsesDeepseek) {
  const ModelConfig c = parse(deepseek_config());
  EXPECT_EQ(c.family, Family::deepseek);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.top_k, 6);
  EXPECT_EQ(c.expert_intermediate, 32);
  EXPECT_EQ(c.shared_intermediate, 64);
  EXPECT_FALSE(c.shared_expert_gated);
  EXPECT_EQ(c.dense_intermediate, 256);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.layer_is_moe, (std::vector<bool>{false, false, true, false, true, false}));

  json j = deepseek_config();
  j.erase("moe_layer_freq");
  j["first_k_dense_replace"] = 2;
  j["n_shared_experts"] = 3;
  j.erase("norm_topk_prob");
  const ModelConfig d = parse(j);
  EXPECT_EQ(d.layer_is_moe, (std::vector<bool>{false, false, true, true, true, true}));
  EXPECT_EQ(d.shared_intermediate, 96);
  EXPECT_FALSE(d.norm_topk_prob);
}

// head_dim: null falls back to hidden / heads; an explicit value is kept even when it differs.
TEST(ModelConfigTest, HeadDimFallbackAndExplicit) {
  json j = mixtral_config();
  j["head_dim"] = nullptr;
  EXPECT_EQ(parse(j).head_dim, 16);
  j["head_dim"] = 32;
  EXPECT_EQ(parse(j).head_dim, 32);
}

TEST(ModelConfigTest, RopeThetaSources) {
  json j = mixtral_config();
  j["rope_scaling"] = nullptr;
  EXPECT_EQ(parse(j).rope_theta, 1000000.0);  // top level
  j.erase("rope_theta");
  EXPECT_EQ(parse(j).rope_theta, 10000.0);  // default
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 250000.0}};
  EXPECT_EQ(parse(j).rope_theta, 250000.0);  // transformers 5
  j["rope_theta"] = 1000.0;
  EXPECT_EQ(parse(j).rope_theta, 250000.0);  // rope_parameters wins over the top level
  j.erase("rope_parameters");
  j["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(parse(j).rope_theta, 1000.0);  // an explicit default scaling is accepted
}

TEST(ModelConfigTest, EosTokenIdIntListOrNull) {
  json j = mixtral_config();
  j["eos_token_id"] = 7;
  EXPECT_EQ(parse(j).eos_token_ids, std::vector<int64_t>{7});
  j["eos_token_id"] = json::array({3, 4, 5});
  EXPECT_EQ(parse(j).eos_token_ids, (std::vector<int64_t>{3, 4, 5}));
  j["eos_token_id"] = nullptr;
  EXPECT_TRUE(parse(j).eos_token_ids.empty());
  j["bos_token_id"] = nullptr;
  EXPECT_EQ(parse(j).bos_token_id, -1);
}

// Qwen2-MoE is the one family allowed attention biases (its q/k/v projections have them).
TEST(ModelConfigTest, Qwen2MoeAcceptsAttentionBias) {
  json j = qwen2_moe_config();
  j["attention_bias"] = true;
  EXPECT_TRUE(parse(j).qkv_bias);
}

// ---- refusals -------------------------------------------------------------------------------

TEST(ModelConfigTest, RefusesUnknownArchitecture) {
  json j = mixtral_config();
  j["architectures"] = json::array({"LlamaForCausalLM"});
  expect_refused(j, {"LlamaForCausalLM", "MixtralForCausalLM", "Qwen2MoeForCausalLM",
                     "OlmoeForCausalLM", "DeepseekForCausalLM"});
  j["architectures"] = json::array();
  expect_refused(j, {"architectures"});
  j.erase("architectures");
  expect_refused(j, {"architectures"});
  j["architectures"] = "MixtralForCausalLM";  // a string, not a list
  expect_refused(j, {"architectures"});
}

TEST(ModelConfigTest, RefusesInvalidJson) {
  expect_text_refused("{\"architectures\": [\"MixtralForCausalLM\"", {"JSON"});
  expect_text_refused("", {"JSON"});
  expect_text_refused("[1, 2]", {});
}

TEST(ModelConfigTest, RefusesMissingRequiredField) {
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                          "num_local_experts", "num_experts_per_tok", "intermediate_size"}) {
    json j = mixtral_config();
    j.erase(key);
    SCOPED_TRACE(key);
    expect_refused(j, {key, "required"});
  }
  struct Case {
    json config;
    const char* key;
  };
  for (auto& c :
       {Case{qwen2_moe_config(), "num_experts"}, Case{qwen2_moe_config(), "moe_intermediate_size"},
        Case{qwen2_moe_config(), "intermediate_size"}, Case{olmoe_config(), "num_experts"},
        Case{olmoe_config(), "intermediate_size"}, Case{deepseek_config(), "n_routed_experts"},
        Case{deepseek_config(), "moe_intermediate_size"},
        Case{deepseek_config(), "intermediate_size"}}) {
    json j = c.config;
    j.erase(c.key);
    SCOPED_TRACE(c.key);
    expect_refused(j, {c.key, "required"});
  }
  // A present-but-null required field is missing too.
  json j = mixtral_config();
  j["hidden_size"] = nullptr;
  expect_refused(j, {"hidden_size", "required"});
}

TEST(ModelConfigTest, RefusesWrongType) {
  struct Case {
    const char* key;
    json value;
    const char* shown;  // how the message shows the value
  };
  for (const auto& c :
       {Case{"num_hidden_layers", "4", "\"4\""}, Case{"hidden_size", 128.5, "128.5"},
        Case{"rms_norm_eps", "1e-6", "\"1e-6\""}, Case{"tie_word_embeddings", "yes", "\"yes\""},
        Case{"rope_theta", "big", "\"big\""}, Case{"eos_token_id", json::array({1, "x"}), "\"x\""},
        Case{"eos_token_id", "2", "\"2\""}, Case{"hidden_act", 3, "3"},
        Case{"rope_scaling", "linear", "linear"}}) {
    json j = mixtral_config();
    j[c.key] = c.value;
    SCOPED_TRACE(c.key);
    expect_refused(j, {c.key, c.shown});
  }
}

TEST(ModelConfigTest, RefusesScaledRope) {
  json j = mixtral_config();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_refused(j, {"rope_scaling", "yarn"});
  j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  expect_refused(j, {"rope_scaling", "dynamic"});
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 10000.0}};
  expect_refused(j, {"rope_parameters", "linear"});
  j["rope_parameters"] = {
      {"rope_type", "default"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", 0.5}};
  expect_refused(j, {"rope_parameters", "partial_rotary_factor"});
  j.erase("rope_parameters");
  j["partial_rotary_factor"] = 0.5;
  expect_refused(j, {"partial_rotary_factor"});
  j.erase("partial_rotary_factor");
  j["rope_theta"] = -1.0;
  expect_refused(j, {"rope_theta"});
}

TEST(ModelConfigTest, RefusesNonSiluActivation) {
  json j = deepseek_config();
  j["hidden_act"] = "gelu";
  expect_refused(j, {"hidden_act", "gelu"});
}

TEST(ModelConfigTest, RefusesKvHeadsNotDividingHeads) {
  json j = mixtral_config();
  j["num_key_value_heads"] = 3;
  expect_refused(j, {"num_key_value_heads", "3", "8"});
}

TEST(ModelConfigTest, RefusesTopKOutOfRange) {
  json j = mixtral_config();
  j["num_experts_per_tok"] = 9;
  expect_refused(j, {"num_experts_per_tok", "9"});
  j["num_experts_per_tok"] = 0;
  expect_refused(j, {"num_experts_per_tok", "0"});
  json q = qwen2_moe_config();
  q["num_experts_per_tok"] = 61;
  expect_refused(q, {"num_experts_per_tok", "61"});
}

TEST(ModelConfigTest, RefusesDeepseekSigmoidScoring) {
  json j = deepseek_config();
  j["scoring_func"] = "sigmoid";
  expect_refused(j, {"scoring_func", "sigmoid"});
}

TEST(ModelConfigTest, RefusesQwen2MoeSlidingWindow) {
  json j = qwen2_moe_config();
  j["use_sliding_window"] = true;
  expect_refused(j, {"use_sliding_window"});
}

TEST(ModelConfigTest, RefusesAttentionBiasOutsideQwen2Moe) {
  for (json j : {mixtral_config(), olmoe_config(), deepseek_config()}) {
    j["attention_bias"] = true;
    expect_refused(j, {"attention_bias"});
    j["attention_bias"] = false;
    EXPECT_NO_THROW(parse(j));
  }
}

TEST(ModelConfigTest, RefusesBadHeadDim) {
  json j = mixtral_config();
  j["head_dim"] = 15;
  expect_refused(j, {"head_dim", "15"});
  j["head_dim"] = 2048;
  expect_refused(j, {"head_dim", "2048"});
}

TEST(ModelConfigTest, RefusesBadLayerPatterns) {
  json d = deepseek_config();
  d["moe_layer_freq"] = 0;
  expect_refused(d, {"moe_layer_freq"});
  json q = qwen2_moe_config();
  q["decoder_sparse_step"] = 0;
  expect_refused(q, {"decoder_sparse_step"});
  json o = olmoe_config();
  o["clip_qkv"] = -1.0;
  expect_refused(o, {"clip_qkv"});
}

// Sizes must be positive.
TEST(ModelConfigTest, RefusesNonPositiveSizes) {
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads"}) {
    json j = mixtral_config();
    j[key] = 0;
    SCOPED_TRACE(key);
    expect_refused(j, {key, "0"});
  }
}

// A zero expert count or expert width is refused naming the config key the family reads it from
// (the key the user has to fix), not an internal name.
TEST(ModelConfigTest, RefusesNonPositiveExpertSizesNamingTheKey) {
  struct Case {
    json config;
    const char* key;
  };
  for (auto& c :
       {Case{mixtral_config(), "num_local_experts"}, Case{mixtral_config(), "intermediate_size"},
        Case{qwen2_moe_config(), "num_experts"}, Case{qwen2_moe_config(), "moe_intermediate_size"},
        Case{olmoe_config(), "num_experts"}, Case{olmoe_config(), "intermediate_size"},
        Case{deepseek_config(), "n_routed_experts"},
        Case{deepseek_config(), "moe_intermediate_size"}}) {
    json j = c.config;
    j[c.key] = 0;
    SCOPED_TRACE(j["architectures"][0].get<std::string>() + " " + c.key);
    expect_refused(j, {"field " + std::string(c.key) + ":"});
  }
}

// A negative layer count is refused like zero, with a moeflow::Error naming the field.
TEST(ModelConfigTest, RefusesNegativeLayerCount) {
  for (json j : {mixtral_config(), qwen2_moe_config(), olmoe_config(), deepseek_config()}) {
    j["num_hidden_layers"] = -1;
    SCOPED_TRACE(j["architectures"][0].get<std::string>());
    expect_refused(j, {"num_hidden_layers"});
  }
}

// ---- files ----------------------------------------------------------------------------------

TEST(ModelConfigTest, LoadFromMissingFolderNamesThePath) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "moeflow_no_such_checkpoint_dir";
  std::filesystem::remove_all(dir);
  try {
    load_model_config(dir);
    ADD_FAILURE() << "loaded a config from a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string()), std::string::npos)
        << e.what();
  }
}

// The fixture checkpoints (tests/golden) load, with the fields the engine relies on.
TEST(ModelConfigTest, LoadsGoldenFixtureConfigs) {
  const std::filesystem::path golden = std::filesystem::path(MOEFLOW_SOURCE_DIR) / "tests/golden";

  const ModelConfig m = load_model_config(golden / "mixtral");
  EXPECT_EQ(m.family, Family::mixtral);
  EXPECT_EQ(m.head_dim, 16);  // "head_dim": null
  EXPECT_EQ(m.sliding_window, 0);
  EXPECT_EQ(m.layer_is_moe, std::vector<bool>(3, true));

  const ModelConfig q = load_model_config(golden / "qwen2_moe");
  EXPECT_EQ(q.family, Family::qwen2_moe);
  EXPECT_EQ(q.layer_is_moe, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(q.shared_intermediate, 64);
  EXPECT_TRUE(q.norm_topk_prob);

  const ModelConfig o = load_model_config(golden / "olmoe");
  EXPECT_EQ(o.family, Family::olmoe);
  EXPECT_TRUE(o.tie_word_embeddings);
  EXPECT_TRUE(o.qk_norm);
  EXPECT_EQ(o.clip_qkv, 0.0f);  // "clip_qkv": null

  const ModelConfig d = load_model_config(golden / "deepseek");
  EXPECT_EQ(d.family, Family::deepseek);
  EXPECT_EQ(d.layer_is_moe, (std::vector<bool>{false, true, true}));
  EXPECT_EQ(d.shared_intermediate, 64);
  EXPECT_EQ(d.dense_intermediate, 96);
  EXPECT_FALSE(d.norm_topk_prob);

  for (const auto* c : {&m, &q, &o, &d}) {
    EXPECT_EQ(c->vocab_size, 320);
    EXPECT_EQ(c->hidden_size, 64);
    EXPECT_EQ(c->num_layers, 3);
    EXPECT_EQ(c->num_heads, 4);
    EXPECT_EQ(c->num_kv_heads, 2);
    EXPECT_EQ(c->num_experts, 8);
    EXPECT_EQ(c->top_k, 2);
    EXPECT_EQ(c->rope_theta, 10000.0);
    EXPECT_TRUE(c->eos_token_ids.empty());
  }
}

}  // namespace
}  // namespace moeflow
