#include "model/kv_cache_book.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace moeflow {

KvCacheBook::KvCacheBook(int64_t num_layers) : num_layers_(num_layers) {
  if (num_layers < 0) throw Error("kv cache: " + std::to_string(num_layers) + " layers");
}

KvCacheBook::Sequence& KvCacheBook::sequence(uint64_t seq_id) {
  auto [it, added] = sequences_.try_emplace(seq_id);
  if (added) it->second.rows.assign(num_layers_, 0);
  return it->second;
}

int64_t KvCacheBook::length(uint64_t seq_id) const {
  auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? 0 : it->second.length;
}

int64_t KvCacheBook::rows(uint64_t seq_id, int64_t layer) const {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end() || layer < 0 || layer >= num_layers_) return 0;
  return it->second.rows[layer];
}

int64_t KvCacheBook::append(uint64_t seq_id, int64_t layer, int64_t n) {
  if (layer < 0 || layer >= num_layers_ || n < 0)
    throw Error("kv cache: append of " + std::to_string(n) + " rows to layer " +
                std::to_string(layer) + " of sequence " + std::to_string(seq_id) + " (" +
                std::to_string(num_layers_) + " layers)");
  int64_t& held = sequence(seq_id).rows[layer];
  held += n;
  return held;
}

void KvCacheBook::commit(uint64_t seq_id, int64_t n) {
  sequence(seq_id).length += n;
}

void KvCacheBook::truncate(uint64_t seq_id, int64_t length) {
  // A negative length would leave nonsense lengths behind: refuse it.
  if (length < 0)
    throw Error("kv cache: truncate of sequence " + std::to_string(seq_id) + " to length " +
                std::to_string(length));
  Sequence& s = sequence(seq_id);
  s.length = std::min(s.length, length);
  for (int64_t& held : s.rows) held = std::min(held, s.length);
}

void KvCacheBook::release(uint64_t seq_id) {
  sequences_.erase(seq_id);
}

int64_t KvCacheBook::rows_total() const {
  int64_t total = 0;
  for (const auto& [id, s] : sequences_)
    for (const int64_t held : s.rows) total += held;
  return total;
}

}  // namespace moeflow
