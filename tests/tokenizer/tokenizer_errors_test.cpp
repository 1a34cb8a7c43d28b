// What the tokenizer refuses, and how it says so: the file and the field, never a guess.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "tests/support/temp_dir.h"
#include "tests/tokenizer/fixtures.h"
#include "tokenizer/tokenizer.h"

namespace moeflow {
namespace {

using test_support::tokenizer_fixture;

// The message of the Error that loading `json` (as text) throws.
std::string load_error(const std::string& json) {
  try {
    Tokenizer::from_json(json, "dir/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// The qwen2 fixture with one top-level field replaced.
std::string qwen2_with(const std::string& key, const nlohmann::json& value) {
  nlohmann::json doc = test_support::read_json_file(tokenizer_fixture("qwen2") / "tokenizer.json");
  doc[key] = value;
  return doc.dump();
}

TEST(TokenizerErrors, MissingFile) {
  test_support::TempDir dir;
  try {
    Tokenizer::load(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()).find((dir.path() / "tokenizer.json").string() + ": cannot open"), 0u)
        << e.what();
  }
}

TEST(TokenizerErrors, MalformedJson) {
  test_support::TempDir dir;
  std::ofstream(dir.path() / "tokenizer.json") << R"({"model": {"type": "BPE", )";
  try {
    Tokenizer::load(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()).find((dir.path() / "tokenizer.json").string() + ": not valid JSON"),
        0u)
        << e.what();
  }
}

TEST(TokenizerErrors, UnsupportedModelTypes) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    EXPECT_EQ(
        load_error(qwen2_with("model", {{"type", type}, {"vocab", nlohmann::json::object()}})),
        std::string("dir/tokenizer.json: field model.type: unsupported tokenizer model \"") + type +
            "\" (only BPE is supported; WordPiece and Unigram are not)");
  }
  EXPECT_EQ(load_error(R"({"normalizer": null})"), "dir/tokenizer.json: field model: is required");
}

TEST(TokenizerErrors, UnsupportedStagesAreNamed) {
  EXPECT_EQ(load_error(qwen2_with("normalizer",
                                  {{"type", "Sequence"},
                                   {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}})),
            "dir/tokenizer.json: field normalizer.normalizers[1].type: unsupported normalizer "
            "\"Lowercase\" (supported: NFC, Prepend, Replace, Sequence)");
  EXPECT_EQ(load_error(qwen2_with("pre_tokenizer", {{"type", "BertPreTokenizer"}})),
            "dir/tokenizer.json: field pre_tokenizer.type: unsupported pre-tokenizer "
            "\"BertPreTokenizer\" (supported: ByteLevel, Split, Digits, Metaspace, Sequence)");
  EXPECT_EQ(load_error(qwen2_with("decoder", {{"type", "WordPiece"}})),
            "dir/tokenizer.json: field decoder.type: unsupported decoder \"WordPiece\" (supported: "
            "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
  EXPECT_EQ(load_error(qwen2_with("post_processor", {{"type", "RobertaProcessing"}})),
            "dir/tokenizer.json: field post_processor.type: unsupported post-processor "
            "\"RobertaProcessing\" (supported: TemplateProcessing, ByteLevel, Sequence)");
  EXPECT_EQ(load_error(qwen2_with(
                "decoder", {{"type", "Sequence"},
                            {"decoders", {{{"type", "Fuse"}}, {{"type", "ByteFallback"}}}}})),
            "dir/tokenizer.json: field decoder.decoders[1].type: ByteFallback after Fuse or "
            "ByteLevel is not supported");
  const std::string regex_error = load_error(qwen2_with(
      "pre_tokenizer",
      {{"type", "Split"}, {"pattern", {{"Regex", "(?<=x)y"}}}, {"behavior", "Isolated"}}));
  EXPECT_EQ(
      regex_error.find("dir/tokenizer.json: field pre_tokenizer.pattern.Regex: regex \"(?<=x)y\""),
      0u)
      << regex_error;
}

TEST(TokenizerErrors, InconsistentModel) {
  nlohmann::json doc = test_support::read_json_file(tokenizer_fixture("qwen2") / "tokenizer.json");
  doc["model"]["merges"].push_back({"no-such-token", "x"});
  const size_t index = doc["model"]["merges"].size() - 1;
  EXPECT_EQ(load_error(doc.dump()), "dir/tokenizer.json: field model.merges[" +
                                        std::to_string(index) +
                                        "]: token \"no-such-token\" is not in the vocabulary");
  doc = test_support::read_json_file(tokenizer_fixture("qwen2") / "tokenizer.json");
  doc["model"]["dropout"] = 0.1;
  EXPECT_NE(load_error(doc.dump()).find("field model.dropout: BPE dropout is not supported"),
            std::string::npos);
  doc = test_support::read_json_file(tokenizer_fixture("mixtral") / "tokenizer.json");
  doc["model"]["unk_token"] = "<nope>";
  EXPECT_EQ(load_error(doc.dump()),
            "dir/tokenizer.json: field model.unk_token: \"<nope>\" is not in the vocabulary");
}

TEST(TokenizerErrors, EncodeRefusesInvalidUtf8) {
  const Tokenizer tok = Tokenizer::load(tokenizer_fixture("qwen2"));
  try {
    tok.encode("ok\xC3(", false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "encode: the text is not valid UTF-8 (at byte 2)");
  }
}

}  // namespace
}  // namespace moeflow
