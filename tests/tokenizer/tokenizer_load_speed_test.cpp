// Loading a tokenizer.json of a real model's size (150k tokens and merges, like Qwen2's) must
// take well under a second: hash maps throughout, nothing quadratic in the merges.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace moeflow {
namespace {

// A byte-level BPE whose merges build 150k tokens (token k+256 = token(a) + token(b)) from the
// GPT-2 byte alphabet, about as large as Qwen2's tokenizer.json.
std::string big_tokenizer_json(int32_t merges) {
  nlohmann::json vocab = nlohmann::json::object();
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    std::string t = tokenizer_detail::to_byte_level(std::string(1, static_cast<char>(b)));
    vocab[t] = b;
    tokens.push_back(t);
  }
  nlohmann::json merge_list = nlohmann::json::array();
  uint64_t x = 88172645463325252ull;
  for (int32_t k = 0; k < merges; ++k) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const std::string a = tokens[x % tokens.size()];  // copies: tokens grows below
    const std::string b = tokens[(x >> 20) % 256];
    std::string merged = a + b;
    if (vocab.contains(merged)) continue;
    vocab[merged] = static_cast<int32_t>(tokens.size());
    tokens.push_back(merged);
    merge_list.push_back({a, b});
  }
  nlohmann::json doc = {{"version", "1.0"},
                        {"added_tokens", nlohmann::json::array()},
                        {"normalizer", {{"type", "NFC"}}},
                        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                        {"post_processor", nullptr},
                        {"decoder", {{"type", "ByteLevel"}}},
                        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
  return doc.dump();
}

TEST(TokenizerLoadSpeed, A150kVocabularyLoadsWellUnderASecond) {
  const std::string json = big_tokenizer_json(150000);
  ASSERT_GT(json.size(), 5'000'000u);
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::from_json(json, "big/tokenizer.json");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(tok.vocab_size(), 140000);
  std::printf("loaded %.1f MB, %lld tokens in %.3f s\n", json.size() / 1e6,
              static_cast<long long>(tok.vocab_size()), seconds);
  // A sanitizer or debug build is several times slower; the bound is for the release build.
  // A guard against quadratic work in loading (it takes ~0.3 s here), not a benchmark: the bound
  // is loose so that a busy CI machine does not fail it.
  EXPECT_LT(seconds, 5.0);
}

}  // namespace
}  // namespace moeflow
