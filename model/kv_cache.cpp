#include "model/kv_cache.h"

#include <string>

#include "core/error.h"

namespace moeflow {

KvCache::Rows& KvCache::rows(uint64_t seq_id) {
  auto [it, added] = rows_.try_emplace(seq_id);
  if (added) {
    it->second.k.resize(book_.num_layers());
    it->second.v.resize(book_.num_layers());
  }
  return it->second;
}

const KvCache::Rows& KvCache::existing(uint64_t seq_id) const {
  auto it = rows_.find(seq_id);
  if (it == rows_.end()) throw Error("kv cache: unknown sequence " + std::to_string(seq_id));
  return it->second;
}

int64_t KvCache::append(uint64_t seq_id, int64_t layer, const float* k, const float* v, int64_t n) {
  const int64_t held = book_.append(seq_id, layer, n);  // checks layer and n
  Rows& r = rows(seq_id);
  r.k[layer].insert(r.k[layer].end(), k, k + n * kv_dim_);
  r.v[layer].insert(r.v[layer].end(), v, v + n * kv_dim_);
  return held;
}

const float* KvCache::keys(uint64_t seq_id, int64_t layer) const {
  return existing(seq_id).k[layer].data();
}
const float* KvCache::values(uint64_t seq_id, int64_t layer) const {
  return existing(seq_id).v[layer].data();
}

void KvCache::commit(uint64_t seq_id, int64_t n) {
  book_.commit(seq_id, n);
  rows(seq_id);
}

void KvCache::truncate(uint64_t seq_id, int64_t length) {
  book_.truncate(seq_id, length);  // also drops a failed step's uncommitted rows
  Rows& r = rows(seq_id);
  for (int64_t l = 0; l < book_.num_layers(); ++l) {
    const size_t keep = static_cast<size_t>(book_.rows(seq_id, l) * kv_dim_);
    r.k[l].resize(keep);
    r.v[l].resize(keep);
  }
}

void KvCache::release(uint64_t seq_id) {
  book_.release(seq_id);
  rows_.erase(seq_id);
}

int64_t KvCache::bytes() const {
  return book_.rows_total() * 2 * kv_dim_ * static_cast<int64_t>(sizeof(float));
}

}  // namespace moeflow
