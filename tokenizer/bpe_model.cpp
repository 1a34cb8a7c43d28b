#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <queue>

#include "tokenizer/utf8.h"

namespace moeflow::tokenizer_detail {

BpeModel BpeModel::from_json(const JsonField& model) {
  model.require_object();
  const std::string type = model.string("type", "BPE");
  if (type != "BPE") {
    model.at("type").fail("unsupported tokenizer model \"" + type +
                          "\" (only BPE is supported; WordPiece and Unigram are not)");
  }
  BpeModel m;
  if (model.has("dropout") && model.at("dropout").value() != 0.0) {
    model.at("dropout").fail("BPE dropout is not supported (tokenization must be deterministic)");
  }
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.has(field) && !model.string(field).empty()) {
      model.at(field).fail("is not supported (GPT-2 and SentencePiece style BPE do not use it)");
    }
  }
  m.fuse_unk_ = model.boolean("fuse_unk", false);
  m.byte_fallback_ = model.boolean("byte_fallback", false);
  m.ignore_merges_ = model.boolean("ignore_merges", false);

  const JsonField vocab = model.at("vocab");
  vocab.require_object();
  m.vocab_.reserve(vocab.value().size());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab.value().items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      vocab.fail("token \"" + token + "\" has id " + id.dump() +
                 ", expected a non-negative integer");
    }
    m.vocab_.emplace(token, static_cast<int32_t>(id.get<int64_t>()));
    max_id = std::max(max_id, static_cast<int32_t>(id.get<int64_t>()));
  }
  m.tokens_.assign(static_cast<size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : m.vocab_) m.tokens_[static_cast<size_t>(id)] = &token;

  if (model.has("unk_token")) {
    const std::string unk = model.string("unk_token");
    const auto it = m.vocab_.find(unk);
    if (it == m.vocab_.end())
      model.at("unk_token").fail("\"" + unk + "\" is not in the vocabulary");
    m.unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    static const char* hex = "0123456789ABCDEF";
    const std::string name = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
    const auto it = m.vocab_.find(name);
    m.byte_ids_[b] = it == m.vocab_.end() ? -1 : it->second;
  }

  // Merges come as "left right" strings (older files) or as ["left", "right"] pairs.
  const JsonField merges = model.at("merges");
  const size_t count = merges.array_size();
  m.merges_.reserve(count);
  std::string merged;  // reused: one allocation for all merges
  for (size_t i = 0; i < count; ++i) {
    const nlohmann::json& entry = merges.value()[i];
    std::string_view left, right;
    if (entry.is_string()) {
      const std::string& s = entry.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) {
        merges.at(i).fail("expected \"left right\", got \"" + s + "\"");
      }
      left = std::string_view(s).substr(0, space);
      right = std::string_view(s).substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get_ref<const std::string&>();
      right = entry[1].get_ref<const std::string&>();
    } else {
      merges.at(i).fail("expected \"left right\" or [\"left\", \"right\"], got " + entry.dump());
    }
    const auto l = m.vocab_.find(left);
    const auto r = m.vocab_.find(right);
    merged.assign(left);
    merged.append(right);
    const auto joined = m.vocab_.find(merged);
    for (const auto& [it, what] : {std::pair{l, left}, std::pair{r, right}}) {
      if (it == m.vocab_.end()) {
        merges.at(i).fail("token \"" + std::string(what) + "\" is not in the vocabulary");
      }
    }
    if (joined == m.vocab_.end()) {
      merges.at(i).fail("merged token \"" + merged + "\" is not in the vocabulary");
    }
    // A repeated pair keeps its last rank, as the crate's map does.
    m.merges_[pair_key(l->second, r->second)] = Merge{static_cast<int32_t>(i), joined->second};
  }
  return m;
}

std::optional<int32_t> BpeModel::id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return nullptr;
  return tokens_[static_cast<size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  // One symbol per character; characters outside the vocabulary become byte tokens or <unk>.
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  bool pending_unk = false;  // consecutive unknowns fuse into one <unk> when fuse_unk is set
  for (size_t i = 0; i < word.size();) {
    const size_t n = utf8_length(word, i);
    const std::string_view c = word.substr(i, n);
    i += n;
    if (const auto it = vocab_.find(c); it != vocab_.end()) {
      if (pending_unk) symbols.push_back(*unk_id_);
      pending_unk = false;
      symbols.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char b : c) all = all && byte_ids_[static_cast<uint8_t>(b)] >= 0;
      if (all) {
        // The crate does not flush a pending <unk> here; neither do we (it comes later).
        for (char b : c) symbols.push_back(byte_ids_[static_cast<uint8_t>(b)]);
        continue;
      }
    }
    if (!unk_id_) continue;  // no unknown token: the character is dropped, as in the crate
    if (pending_unk && !fuse_unk_) symbols.push_back(*unk_id_);
    pending_unk = true;
  }
  if (pending_unk) symbols.push_back(*unk_id_);
  merge_all(symbols);
  ids.insert(ids.end(), symbols.begin(), symbols.end());
}

// Word::merge_all of the crate: a min-heap of candidate merges by (rank, position); entries that
// went stale when a neighbour merged are skipped when popped.
void BpeModel::merge_all(std::vector<int32_t>& symbols) const {
  const size_t n = symbols.size();
  if (n < 2) return;
  struct Candidate {
    int32_t rank;
    size_t pos;
    int32_t id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<ptrdiff_t> prev(n), next(n);
  std::vector<bool> removed(n, false);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<ptrdiff_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<ptrdiff_t>(i + 1) : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](size_t left, size_t right) {
    const auto it = merges_.find(pair_key(symbols[left], symbols[right]));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.id});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(i, i + 1);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (removed[top.pos] || next[top.pos] < 0) continue;
    const size_t right = static_cast<size_t>(next[top.pos]);
    const auto it = merges_.find(pair_key(symbols[top.pos], symbols[right]));
    if (it == merges_.end() || it->second.id != top.id) continue;
    symbols[top.pos] = top.id;
    removed[right] = true;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[static_cast<size_t>(next[right])] = static_cast<ptrdiff_t>(top.pos);
    if (prev[top.pos] >= 0) consider(static_cast<size_t>(prev[top.pos]), top.pos);
    if (next[top.pos] >= 0) consider(top.pos, static_cast<size_t>(next[top.pos]));
  }
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!removed[i]) symbols[out++] = symbols[i];
  }
  symbols.resize(out);
}

}  // namespace moeflow::tokenizer_detail
