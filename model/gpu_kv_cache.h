#pragma once
// The KV cache of model/kv_cache.h on a GPU: keys and values of every layer for each running
// sequence, each (sequence, layer) one device buffer of [capacity, kv_heads · head_dim] fp32
// holding its rows contiguously (the layout decode attention reads). A buffer doubles when it
// fills (the rows are copied over). The bookkeeping (lengths, uncommitted rows, truncate) is
// KvCacheBook's, the same rules as KvCache. Not for concurrent use; every call but append is
// synchronous with respect to the device, so a caller must have finished (synchronised) the
// work that reads the cache before truncate or release - GpuRouterStage's host forms do before
// returning, and the device-resident step (model/gpu_engine_step.h) when it copies the logits out.
#include <cstdint>
#include <memory>

#include "model/kv_cache_book.h"
#include "model/kv_cache_state.h"

#if MOEFLOW_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace moeflow {

class GpuKvCache : public KvCacheState {
 public:
  // Throws moeflow::Error naming the device when this process has no GPU `device` (or was built
  // without CUDA).
  GpuKvCache(int64_t num_layers, int64_t kv_dim, int device);
  ~GpuKvCache() override;
  GpuKvCache(const GpuKvCache&) = delete;
  GpuKvCache& operator=(const GpuKvCache&) = delete;

  int device() const;
  int64_t num_layers() const;
  int64_t kv_dim() const;

  // Tokens already cached for the sequence (0 for an unknown one).
  int64_t length(uint64_t seq_id) const override;
#if MOEFLOW_HAVE_CUDA
  // Appends n rows of keys and values for one layer from DEVICE memory ([n, kv_dim] fp32 each,
  // contiguous), copied on `stream` (so after the work that made them). Returns the layer's new
  // row count. When the buffer grows it waits for `stream` before freeing the old one. On a
  // failure (out of memory, a failed copy) the sequence's uncommitted rows are dropped, as the
  // caller's rollback of the failed step would, and moeflow::Error names sequence and layer.
  int64_t append(uint64_t seq_id, int64_t layer, const float* k, const float* v, int64_t n,
                 cudaStream_t stream);
#endif
  // Device pointers to the layer's rows (null while it holds none). Throws for an unknown
  // sequence, as KvCache does. Valid until the next append to that (sequence, layer) or release.
  const float* keys(uint64_t seq_id, int64_t layer) const;
  const float* values(uint64_t seq_id, int64_t layer) const;
  // Marks the rows appended to every layer in this step as part of the sequence.
  void commit(uint64_t seq_id, int64_t n) override;
  // Drops cached tokens past `length` and any uncommitted rows (rolls back); keeps the sequence
  // and its device buffers.
  void truncate(uint64_t seq_id, int64_t length) override;
  // Frees the sequence's device buffers.
  void release(uint64_t seq_id) override;
  bool contains(uint64_t seq_id) const override;
  size_t sequence_count() const override;
  // Bytes of rows held, as KvCache::bytes counts them.
  int64_t bytes() const override;
  // Device memory allocated (capacity), at least bytes().
  int64_t allocated_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeflow
