#pragma once
// The HTTP API's TextCodec over the checkpoint's own tokenizer (tokenizer.json and
// tokenizer_config.json in the model folder).
#include <filesystem>
#include <memory>

#include "api/text_codec.h"

namespace moeflow::api {

// Throws moeflow::Error when the folder has no usable tokenizer.
std::unique_ptr<TextCodec> make_tokenizer_codec(const std::filesystem::path& model_dir);

}  // namespace moeflow::api
