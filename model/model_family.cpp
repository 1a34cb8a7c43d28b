#include "model/model_family.h"

#include "core/error.h"

namespace moeflow {

std::string layer_prefix(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".";
}

MlpNames proj_names(const std::string& prefix) {
  return {prefix + "gate_proj.weight", prefix + "up_proj.weight", prefix + "down_proj.weight"};
}

MlpNames dense_mlp_names(int64_t layer) {
  return proj_names(layer_prefix(layer) + "mlp.");
}

namespace {
const ModelFamily* const kFamilies[] = {&mixtral_family(), &qwen2_moe_family(), &olmoe_family(),
                                        &deepseek_family()};
}

std::vector<std::string_view> supported_architectures() {
  std::vector<std::string_view> out;
  for (const auto* f : kFamilies) out.push_back(f->architecture());
  return out;
}

const ModelFamily& family_for_architecture(const std::string& architecture,
                                           const std::string& source) {
  for (const auto* f : kFamilies)
    if (f->architecture() == architecture) return *f;
  std::string list;
  for (auto a : supported_architectures()) list += (list.empty() ? "" : ", ") + std::string(a);
  throw Error(source + ": architecture " + architecture + " is not supported (supported: " + list +
              ")");
}

const ModelFamily& family_of(Family family) {
  for (const auto* f : kFamilies)
    if (f->id() == family) return *f;
  throw Error("unknown model family");
}

}  // namespace moeflow
