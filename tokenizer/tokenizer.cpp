#include "tokenizer/tokenizer.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "tokenizer/tokenizer_state.h"
#include "tokenizer/utf8.h"

namespace moeflow {

using tokenizer_detail::AddedVocabulary;
using tokenizer_detail::JsonField;
using tokenizer_detail::TokenizerState;

namespace tokenizer_detail {

const std::string* TokenizerState::decode_token(int32_t id, bool skip_special_tokens) const {
  if (const AddedToken* t = added.find(id)) {
    if (skip_special_tokens && t->special) return nullptr;
    return &t->decode_text;
  }
  return model.token(id);
}

}  // namespace tokenizer_detail

namespace {

std::shared_ptr<TokenizerState> build(const nlohmann::json& doc, const std::string& source) {
  const JsonField root(doc, "", source);
  root.require_object();
  auto s = std::make_shared<TokenizerState>();
  s->source = source;
  s->normalizer = tokenizer_detail::Normalizer::from_json(root.at("normalizer"));
  s->pre_tokenizer = tokenizer_detail::PreTokenizer::from_json(root.at("pre_tokenizer"));
  if (root.at("model").is_null()) root.at("model").fail("is required");
  s->model = tokenizer_detail::BpeModel::from_json(root.at("model"));
  s->added = AddedVocabulary::from_json(root.at("added_tokens"), s->normalizer);
  s->post_processor = tokenizer_detail::PostProcessor::from_json(root.at("post_processor"));
  s->decoder = tokenizer_detail::Decoder::from_json(root.at("decoder"));
  // truncation and padding are ignored, as transformers ignores them unless asked to truncate/pad.

  // len(tokenizer): the vocabulary and the added tokens, counted once per distinct text.
  int64_t extra = 0;
  std::set<std::string_view> seen;
  for (const auto& t : s->added.tokens()) {
    if (!s->model.id(t.content) && seen.insert(t.content).second) ++extra;
  }
  s->vocab_size = static_cast<int64_t>(s->model.vocabulary().size()) + extra;
  return s;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerState> state) : state_(std::move(state)) {}

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "tokenizer.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(path.string() + ": cannot open (a Hugging Face tokenizer.json is expected in " +
                dir.string() + ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return from_json(text.str(), path.string());
}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& source) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  return Tokenizer(build(doc, source));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const size_t bad = tokenizer_detail::find_invalid_utf8(text); bad != std::string_view::npos) {
    throw Error("encode: the text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  }
  const TokenizerState& s = *state_;
  std::vector<int32_t> ids;
  std::vector<std::string> words;
  // Added tokens matched on the raw text come out first; the rest is normalized, then searched
  // for the added tokens that match normalized text, then pre-tokenized into words for BPE.
  for (const auto& raw : s.added.split(text, false)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    const std::string normalized = s.normalizer.apply(text.substr(raw.begin, raw.end - raw.begin));
    for (const auto& piece : s.added.split(normalized, true)) {
      if (piece.id >= 0) {
        ids.push_back(piece.id);
        continue;
      }
      words.clear();
      const bool at_text_start = raw.begin == 0 && piece.begin == 0;
      s.pre_tokenizer.split(normalized.substr(piece.begin, piece.end - piece.begin), at_text_start,
                            words);
      for (const std::string& word : words) s.model.tokenize(word, ids);
    }
  }
  if (add_special_tokens) s.post_processor.add_special_tokens(ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  tokenizer_detail::DecodeRun run(state_->decoder);
  std::string out;
  for (int32_t id : ids) {
    if (const std::string* token = state_->decode_token(id, skip_special_tokens))
      run.push(*token, out);
  }
  run.finish(out);
  return out;
}

int64_t Tokenizer::vocab_size() const {
  return state_->vocab_size;
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (auto id = state_->added.id(token)) return id;
  return state_->model.id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const std::string* token = state_->decode_token(id, false)) return *token;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  const auto* t = state_->added.find(id);
  return t != nullptr && t->special;
}

}  // namespace moeflow
