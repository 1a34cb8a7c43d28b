#include "model/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "model/config_reader.h"
#include "model/model_family.h"

namespace moeflow {
namespace {

void require_positive(const ConfigReader& r, const std::string& key, int64_t value) {
  if (value <= 0) r.fail(key, "must be positive, got " + std::to_string(value));
}

// Rotary settings: `rope_theta` + `rope_scaling` (hub configs) or `rope_parameters`
// (transformers 5). Only the default (unscaled) rotary embedding is implemented.
void read_rope(const ConfigReader& r, ModelConfig& cfg) {
  cfg.rope_theta = r.number("rope_theta", 10000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const auto& v = r.raw(key);
    if (v.is_null()) continue;
    if (!v.is_object()) r.fail(key, "expected an object, got " + v.dump());
    std::string type = "default";
    if (v.contains("rope_type") && v["rope_type"].is_string())
      type = v["rope_type"];
    else if (v.contains("type") && v["type"].is_string())
      type = v["type"];
    if (type != "default")
      r.fail(key, "rope type \"" + type + "\" is not supported (only unscaled rotary embeddings)");
    if (v.contains("rope_theta")) {
      if (!v["rope_theta"].is_number()) r.fail(key, "rope_theta must be a number");
      cfg.rope_theta = v["rope_theta"].get<double>();
    }
    if (v.contains("partial_rotary_factor") && v["partial_rotary_factor"] != 1.0)
      r.fail(key, "partial_rotary_factor other than 1 is not supported");
  }
  if (r.has("partial_rotary_factor") && r.number("partial_rotary_factor") != 1.0)
    r.fail("partial_rotary_factor", "values other than 1 are not supported");
  if (!(cfg.rope_theta > 0)) r.fail("rope_theta", "must be positive");
}

void validate(const ConfigReader& r, const ModelConfig& cfg) {
  require_positive(r, "vocab_size", cfg.vocab_size);
  require_positive(r, "hidden_size", cfg.hidden_size);
  require_positive(r, "num_hidden_layers", cfg.num_layers);
  require_positive(r, "num_attention_heads", cfg.num_heads);
  require_positive(r, "num_key_value_heads", cfg.num_kv_heads);
  require_positive(r, "head_dim", cfg.head_dim);
  if (cfg.num_heads % cfg.num_kv_heads != 0)
    r.fail("num_key_value_heads", std::to_string(cfg.num_kv_heads) +
                                      " does not divide num_attention_heads " +
                                      std::to_string(cfg.num_heads));
  if (cfg.head_dim % 2 != 0 || cfg.head_dim > 1024)
    r.fail("head_dim", "must be even and at most 1024, got " + std::to_string(cfg.head_dim));
  require_positive(r, "num_experts", cfg.num_experts);
  if (cfg.top_k < 1 || cfg.top_k > cfg.num_experts)
    r.fail("num_experts_per_tok", "must be between 1 and the number of experts (" +
                                      std::to_string(cfg.num_experts) + "), got " +
                                      std::to_string(cfg.top_k));
  require_positive(r, "expert intermediate size", cfg.expert_intermediate);
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    if (!cfg.layer_is_moe[l] && cfg.dense_intermediate <= 0)
      r.fail("intermediate_size",
             "layer " + std::to_string(l) + " is dense but no dense intermediate size is set");
}

}  // namespace

int64_t ModelConfig::moe_layer_count() const {
  int64_t n = 0;
  for (bool b : layer_is_moe) n += b;
  return n;
}

std::string family_name(Family family) {
  switch (family) {
    case Family::mixtral:
      return "mixtral";
    case Family::qwen2_moe:
      return "qwen2_moe";
    case Family::olmoe:
      return "olmoe";
    case Family::deepseek:
      return "deepseek";
  }
  return "?";
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(source + ": expected a JSON object");
  ConfigReader r(root, source);

  const auto& archs = r.raw("architectures");
  if (!archs.is_array() || archs.empty() || !archs[0].is_string())
    r.fail("architectures", "expected a list with the model class, e.g. [\"MixtralForCausalLM\"]");
  const ModelFamily& family = family_for_architecture(archs[0].get<std::string>(), source);

  ModelConfig cfg;
  cfg.family = family.id();
  cfg.architecture = family.architecture();
  cfg.model_type = r.string("model_type", "");
  cfg.vocab_size = r.integer("vocab_size");
  cfg.hidden_size = r.integer("hidden_size");
  cfg.num_layers = r.integer("num_hidden_layers");
  cfg.num_heads = r.integer("num_attention_heads");
  cfg.num_kv_heads = r.integer("num_key_value_heads", cfg.num_heads);
  cfg.head_dim = r.integer("head_dim", cfg.num_heads > 0 ? cfg.hidden_size / cfg.num_heads : 0);
  cfg.max_position_embeddings = r.integer("max_position_embeddings", 4096);
  cfg.rms_norm_eps = static_cast<float>(r.number("rms_norm_eps", 1e-6));
  cfg.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  const std::string act = r.string("hidden_act", "silu");
  if (act != "silu") r.fail("hidden_act", "only \"silu\" is supported, got \"" + act + "\"");
  if (family.id() != Family::qwen2_moe && r.boolean("attention_bias", false))
    r.fail("attention_bias", "attention biases are not supported for " + cfg.architecture);
  read_rope(r, cfg);
  // The family sizes per-layer tables from num_layers, so it must be sane first.
  require_positive(r, "num_hidden_layers", cfg.num_layers);
  if (cfg.num_layers > 4096) r.fail("num_hidden_layers", "more than 4096 layers is not plausible");
  family.read_moe_config(r, cfg);
  cfg.eos_token_ids = r.integer_list("eos_token_id");
  cfg.bos_token_id = r.integer("bos_token_id", -1);
  validate(r, cfg);
  return cfg;
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open (is this a Hugging Face checkpoint folder?)");
  std::stringstream text;
  text << in.rdbuf();
  return parse_model_config(text.str(), path.string());
}

}  // namespace moeflow
