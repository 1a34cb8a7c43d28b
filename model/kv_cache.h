#pragma once
// Keys and values of every layer for each running sequence, contiguous per (sequence, layer):
// [length, kv_heads * head_dim] fp32, in host memory. The bookkeeping (lengths, this step's
// uncommitted rows, truncate) is KvCacheBook's, shared with the GPU cache (model/gpu_kv_cache.h).
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "model/kv_cache_book.h"
#include "model/kv_cache_state.h"

namespace moeflow {

class KvCache : public KvCacheState {
 public:
  KvCache(int64_t num_layers, int64_t kv_dim) : kv_dim_(kv_dim), book_(num_layers) {}

  // Tokens already cached for the sequence (0 for an unknown one).
  int64_t length(uint64_t seq_id) const override { return book_.length(seq_id); }
  // Appends n rows of keys and values for one layer; returns the layer's new row count.
  int64_t append(uint64_t seq_id, int64_t layer, const float* k, const float* v, int64_t n);
  const float* keys(uint64_t seq_id, int64_t layer) const;
  const float* values(uint64_t seq_id, int64_t layer) const;
  // Marks the rows appended to every layer in this step as part of the sequence.
  void commit(uint64_t seq_id, int64_t n) override;
  // Drops cached tokens past `length` and any uncommitted rows (rolls back); keeps the sequence.
  void truncate(uint64_t seq_id, int64_t length) override;
  void release(uint64_t seq_id) override;
  bool contains(uint64_t seq_id) const override { return book_.contains(seq_id); }
  size_t sequence_count() const override { return book_.sequence_count(); }
  int64_t bytes() const override;

 private:
  struct Rows {
    std::vector<std::vector<float>> k, v;  // per layer
  };
  Rows& rows(uint64_t seq_id);
  const Rows& existing(uint64_t seq_id) const;

  int64_t kv_dim_;
  KvCacheBook book_;
  std::unordered_map<uint64_t, Rows> rows_;
};

}  // namespace moeflow
