// Pre-tokenizers against the Hugging Face tokenizers library: the GPT-2 / Qwen2 / Llama-3 /
// DeepSeek split regexes, ByteLevel, Digits, Metaspace and every Split behavior, on handwritten
// and random text of many scripts and kinds of whitespace (pre_tokenizer_cases.json).
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/tokenizer/fixtures.h"

namespace moeflow::tokenizer_detail {
namespace {

using test_support::shown;

TEST(PreTokenizer, SplitsLikeTheLibrary) {
  const nlohmann::json all =
      test_support::read_json_file(test_support::tokenizer_fixture("pre_tokenizer_cases.json"));
  const auto& inputs = all["inputs"];
  ASSERT_GT(inputs.size(), 50u);
  ASSERT_GE(all["configs"].size(), 15u);
  const std::string file = "pre_tokenizer_cases.json";
  for (const auto& config : all["configs"]) {
    SCOPED_TRACE(config["name"].get<std::string>());
    const PreTokenizer pre =
        PreTokenizer::from_json(JsonField(config["pre_tokenizer"], "pre_tokenizer", file));
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string text = inputs[i];
      std::vector<std::string> words;
      pre.split(text, true, words);
      EXPECT_EQ(words, config["words"][i].get<std::vector<std::string>>()) << shown(text);
    }
  }
}

TEST(PreTokenizer, RefusesUnknownTypes) {
  const std::string file = "dir/tokenizer.json";
  const nlohmann::json node = {
      {"type", "Sequence"}, {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Whitespace"}}}}};
  try {
    PreTokenizer::from_json(JsonField(node, "pre_tokenizer", file));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "dir/tokenizer.json: field pre_tokenizer.pretokenizers[1].type: unsupported "
                 "pre-tokenizer \"Whitespace\" (supported: ByteLevel, Split, Digits, Metaspace, "
                 "Sequence)");
  }
}

}  // namespace
}  // namespace moeflow::tokenizer_detail
