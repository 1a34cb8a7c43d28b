#pragma once
// What the router, the step planner and the scheduler's bookkeeping see of a KV cache, wherever
// its rows live: KvCache (host memory, model/kv_cache.h) or GpuKvCache (a GPU,
// model/gpu_kv_cache.h). Appending and reading rows stays with the concrete cache and the stage
// that owns it.
#include <cstddef>
#include <cstdint>

namespace moeflow {

class KvCacheState {
 public:
  virtual ~KvCacheState() = default;
  // Tokens already cached for the sequence (0 for an unknown one).
  virtual int64_t length(uint64_t seq_id) const = 0;
  // Marks the rows appended to every layer in this step as part of the sequence.
  virtual void commit(uint64_t seq_id, int64_t n) = 0;
  // Drops cached tokens past `length` and any uncommitted rows (rolls back); keeps the sequence.
  virtual void truncate(uint64_t seq_id, int64_t length) = 0;
  virtual void release(uint64_t seq_id) = 0;
  virtual bool contains(uint64_t seq_id) const = 0;
  virtual size_t sequence_count() const = 0;
  // Bytes of rows held.
  virtual int64_t bytes() const = 0;
};

}  // namespace moeflow
