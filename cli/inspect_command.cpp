// `moeflow inspect`: what a checkpoint is and what it needs.
#include <cstdio>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "core/format.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/parameter_count.h"

namespace moeflow::cli {
namespace {

const std::vector<OptionSpec> kOptions = {
    {"model", "DIR", "Hugging Face checkpoint folder", ""},
};

void row(const char* key, const std::string& value) {
  std::printf("%-22s %s\n", key, value.c_str());
}

}  // namespace

int run_inspect(const std::vector<std::string>& argv) {
  if (print_help_if_asked(argv, "moeflow inspect --model DIR",
                          "Describes a checkpoint: architecture, experts, parameters, memory.",
                          kOptions))
    return 0;
  const Args args(argv, kOptions);
  const std::filesystem::path dir = args.require("model");
  const ModelConfig c = load_model_config(dir);
  const Checkpoint ckpt = Checkpoint::open(dir);
  const ParameterCount p = count_parameters(c);

  std::map<std::string, int64_t> dtype_counts;
  for (const auto& f : ckpt.files())
    for (const auto& t : f.tensors()) dtype_counts[std::string(dtype_name(t.dtype))]++;
  std::string dtypes;
  for (const auto& [name, count] : dtype_counts)
    dtypes += (dtypes.empty() ? "" : ", ") + name + " (" + std::to_string(count) + " tensors)";

  const int64_t moe = c.moe_layer_count();
  row("architecture", c.architecture + " (" + family_name(c.family) + ")");
  row("layers", std::to_string(c.num_layers) + " (" + std::to_string(moe) + " MoE, " +
                    std::to_string(c.num_layers - moe) + " dense)");
  row("hidden size", std::to_string(c.hidden_size));
  row("attention", std::to_string(c.num_heads) + " heads, " + std::to_string(c.num_kv_heads) +
                       " KV heads, head_dim " + std::to_string(c.head_dim) +
                       (c.qk_norm ? ", q/k norm" : "") + (c.qkv_bias ? ", qkv bias" : ""));
  row("routed experts",
      std::to_string(c.num_experts) + " per MoE layer, top-" + std::to_string(c.top_k) +
          ", intermediate " + std::to_string(c.expert_intermediate) +
          (c.norm_topk_prob ? ", top-k renormalised" : ", top-k not renormalised"));
  row("shared experts", c.shared_intermediate > 0
                            ? "intermediate " + std::to_string(c.shared_intermediate) +
                                  (c.shared_expert_gated ? ", sigmoid-gated" : "")
                            : "none");
  row("vocabulary", std::to_string(c.vocab_size) +
                        (c.tie_word_embeddings ? " (tied LM head)" : " (separate LM head)"));
  row("rope theta", std::to_string(c.rope_theta));
  row("parameters", format_count(p.total) + " total, " + format_count(p.active) +
                        " active per token (" + format_count(p.routed_experts) +
                        " in routed experts)");
  row("weights", dtypes + " in " + std::to_string(ckpt.files().size()) + " file(s)");
  row("memory (as stored)", format_bytes(ckpt.total_tensor_bytes()));
  row("memory (f32 compute)", format_bytes(4.0 * p.total));
  row("memory (bf16 compute)", format_bytes(2.0 * p.total) + " (norms, gates in f32)");
  const double kv_per_token = 2.0 * c.num_layers * c.num_kv_heads * c.head_dim * 4;
  row("KV cache", format_bytes(kv_per_token) + " per token (f32)");
  return 0;
}

}  // namespace moeflow::cli
