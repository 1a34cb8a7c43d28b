#pragma once
// The bookkeeping of a KV cache without its storage: per sequence the committed length and, per
// layer, the rows held (committed plus this step's uncommitted appends). KvCache
// (model/kv_cache.h) keeps its host rows and GpuKvCache (model/gpu_kv_cache.h) its device buffers
// by this book, so the two caches follow one set of rules. Host-only, built everywhere.
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace moeflow {

class KvCacheBook {
 public:
  explicit KvCacheBook(int64_t num_layers);

  int64_t num_layers() const { return num_layers_; }
  // Tokens committed for the sequence (0 for an unknown one).
  int64_t length(uint64_t seq_id) const;
  // Rows held for one layer (0 for an unknown sequence).
  int64_t rows(uint64_t seq_id, int64_t layer) const;
  // Adds the sequence when new; n rows more for `layer`; returns the layer's new row count.
  // Throws moeflow::Error for a layer outside [0, num_layers) or a negative n.
  int64_t append(uint64_t seq_id, int64_t layer, int64_t n);
  // length += n (adds the sequence when new).
  void commit(uint64_t seq_id, int64_t n);
  // length = min(length, `length`), every layer's rows cut to it (which drops a failed step's
  // uncommitted rows); adds the sequence when new. Throws moeflow::Error for a negative length.
  void truncate(uint64_t seq_id, int64_t length);
  void release(uint64_t seq_id);
  bool contains(uint64_t seq_id) const { return sequences_.count(seq_id) != 0; }
  size_t sequence_count() const { return sequences_.size(); }
  // Rows held over every sequence and layer (KvCache::bytes is this times 2 · kv_dim · 4).
  int64_t rows_total() const;

 private:
  struct Sequence {
    int64_t length = 0;
    std::vector<int64_t> rows;  // per layer
  };
  Sequence& sequence(uint64_t seq_id);

  int64_t num_layers_;
  std::unordered_map<uint64_t, Sequence> sequences_;
};

}  // namespace moeflow
