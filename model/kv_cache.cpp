#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace moeflow {

KvCache::Sequence& KvCache::sequence(uint64_t seq_id) {
  auto [it, added] = sequences_.try_emplace(seq_id);
  if (added) {
    it->second.k.resize(num_layers_);
    it->second.v.resize(num_layers_);
  }
  return it->second;
}

const KvCache::Sequence& KvCache::existing(uint64_t seq_id) const {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) throw Error("kv cache: unknown sequence " + std::to_string(seq_id));
  return it->second;
}

int64_t KvCache::length(uint64_t seq_id) const {
  auto it = sequences_.find(seq_id);
  return it == sequences_.end() ? 0 : it->second.length;
}

int64_t KvCache::append(uint64_t seq_id, int64_t layer, const float* k, const float* v, int64_t n) {
  Sequence& s = sequence(seq_id);
  auto& ks = s.k[layer];
  auto& vs = s.v[layer];
  ks.insert(ks.end(), k, k + n * kv_dim_);
  vs.insert(vs.end(), v, v + n * kv_dim_);
  return static_cast<int64_t>(ks.size()) / kv_dim_;
}

const float* KvCache::keys(uint64_t seq_id, int64_t layer) const {
  return existing(seq_id).k[layer].data();
}
const float* KvCache::values(uint64_t seq_id, int64_t layer) const {
  return existing(seq_id).v[layer].data();
}

void KvCache::commit(uint64_t seq_id, int64_t n) {
  sequence(seq_id).length += n;
}

void KvCache::truncate(uint64_t seq_id, int64_t length) {
  Sequence& s = sequence(seq_id);
  // Also drops rows appended by a step that never committed (a failed step).
  s.length = std::min(s.length, length);
  length = s.length;
  for (auto& k : s.k) k.resize(std::min<size_t>(k.size(), length * kv_dim_));
  for (auto& v : s.v) v.resize(std::min<size_t>(v.size(), length * kv_dim_));
}

void KvCache::release(uint64_t seq_id) {
  sequences_.erase(seq_id);
}

int64_t KvCache::bytes() const {
  int64_t total = 0;
  for (const auto& [id, s] : sequences_)
    for (int64_t l = 0; l < num_layers_; ++l)
      total += (s.k[l].size() + s.v[l].size()) * sizeof(float);
  return total;
}

}  // namespace moeflow
