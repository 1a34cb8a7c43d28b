#include "model/gpu_kv_cache.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "model/gpu_device.h"

#if MOEFLOW_HAVE_CUDA
#include "model/gpu_buffer.h"
#endif

namespace moeflow {

#if MOEFLOW_HAVE_CUDA

namespace {

// Rows a buffer starts with: a decode step's first append should not regrow at once.
constexpr int64_t kInitialRows = 16;

// One (sequence, layer)'s device rows.
struct LayerRows {
  float* k = nullptr;
  float* v = nullptr;
  int64_t capacity = 0;  // rows
};

void free_rows(LayerRows& r) {
  cudaFree(r.k);
  cudaFree(r.v);
  r = {};
}

}  // namespace

struct GpuKvCache::Impl {
  int device = 0;
  int64_t kv_dim = 0;
  KvCacheBook book;
  std::unordered_map<uint64_t, std::vector<LayerRows>> rows;  // per sequence, per layer

  Impl(int64_t num_layers, int64_t dim, int dev) : device(dev), kv_dim(dim), book(num_layers) {}
  ~Impl() {
    for (auto& [id, layers] : rows)
      for (LayerRows& r : layers) free_rows(r);
  }
  std::string where(uint64_t seq_id, int64_t layer) const {
    return "GPU kv cache on cuda:" + std::to_string(device) + ", sequence " +
           std::to_string(seq_id) + " layer " + std::to_string(layer);
  }
  const LayerRows& existing(uint64_t seq_id, int64_t layer) const {
    auto it = rows.find(seq_id);
    if (it == rows.end() || !book.contains(seq_id))
      throw Error("kv cache: unknown sequence " + std::to_string(seq_id));
    if (layer < 0 || layer >= book.num_layers())
      throw Error(where(seq_id, layer) + ": no such layer");
    return it->second[layer];
  }
  std::vector<LayerRows>& layers_of(uint64_t seq_id) {
    auto [it, added] = rows.try_emplace(seq_id);
    if (added) it->second.resize(book.num_layers());
    return it->second;
  }
};

GpuKvCache::GpuKvCache(int64_t num_layers, int64_t kv_dim, int device) {
  require_cuda_device(device, "GPU kv cache");
  if (kv_dim <= 0) throw Error("GPU kv cache: kv_dim " + std::to_string(kv_dim));
  impl_ = std::make_unique<Impl>(num_layers, kv_dim, device);
}

GpuKvCache::~GpuKvCache() {
  if (impl_) cudaSetDevice(impl_->device);  // the buffers are freed on their own device
}

int64_t GpuKvCache::append(uint64_t seq_id, int64_t layer, const float* k, const float* v,
                           int64_t n, cudaStream_t stream) {
  Impl& m = *impl_;
  const int64_t before = m.book.rows(seq_id, layer);
  const int64_t after = m.book.append(seq_id, layer, n);  // validates layer and n
  LayerRows& r = m.layers_of(seq_id)[layer];
  if (n == 0) return after;
  try {
    if (k == nullptr || v == nullptr) throw Error("null keys or values");
    cuda_ok(cudaSetDevice(m.device), "cudaSetDevice");
    const size_t row_bytes = m.kv_dim * sizeof(float);
    if (after > r.capacity) {
      int64_t capacity = std::max(r.capacity * 2, kInitialRows);
      while (capacity < after) capacity *= 2;
      LayerRows grown;
      grown.capacity = capacity;
      cuda_ok(cudaMalloc(reinterpret_cast<void**>(&grown.k), capacity * row_bytes),
              "cudaMalloc keys");
      if (cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&grown.v), capacity * row_bytes);
          e != cudaSuccess) {
        free_rows(grown);
        cuda_ok(e, "cudaMalloc values");
      }
      if (before > 0) {
        cuda_ok(cudaMemcpyAsync(grown.k, r.k, before * row_bytes, cudaMemcpyDeviceToDevice, stream),
                "copy keys on growth");
        cuda_ok(cudaMemcpyAsync(grown.v, r.v, before * row_bytes, cudaMemcpyDeviceToDevice, stream),
                "copy values on growth");
      }
      // The old rows may still be read or copied by queued work: free them after it.
      cuda_ok(cudaStreamSynchronize(stream), "wait before freeing the old rows");
      free_rows(r);
      r = grown;
    }
    cuda_ok(cudaMemcpyAsync(r.k + before * m.kv_dim, k, n * row_bytes, cudaMemcpyDeviceToDevice,
                            stream),
            "append keys");
    cuda_ok(cudaMemcpyAsync(r.v + before * m.kv_dim, v, n * row_bytes, cudaMemcpyDeviceToDevice,
                            stream),
            "append values");
  } catch (const std::exception& e) {
    // The rows did not arrive: drop the step's uncommitted rows, as a failed step's truncate
    // would, so that the book never counts rows the buffer lacks.
    m.book.truncate(seq_id, m.book.length(seq_id));
    throw Error(m.where(seq_id, layer) + ": append of " + std::to_string(n) + " rows: " + e.what());
  }
  return after;
}

const float* GpuKvCache::keys(uint64_t seq_id, int64_t layer) const {
  return impl_->existing(seq_id, layer).k;
}

const float* GpuKvCache::values(uint64_t seq_id, int64_t layer) const {
  return impl_->existing(seq_id, layer).v;
}

void GpuKvCache::commit(uint64_t seq_id, int64_t n) {
  impl_->book.commit(seq_id, n);
  impl_->layers_of(seq_id);
}

void GpuKvCache::truncate(uint64_t seq_id, int64_t length) {
  impl_->book.truncate(seq_id, length);
  impl_->layers_of(seq_id);
}

void GpuKvCache::release(uint64_t seq_id) {
  impl_->book.release(seq_id);
  auto it = impl_->rows.find(seq_id);
  if (it == impl_->rows.end()) return;
  cudaSetDevice(impl_->device);
  for (LayerRows& r : it->second) free_rows(r);
  impl_->rows.erase(it);
}

int64_t GpuKvCache::allocated_bytes() const {
  int64_t total = 0;
  for (const auto& [id, layers] : impl_->rows)
    for (const LayerRows& r : layers)
      total += 2 * r.capacity * impl_->kv_dim * static_cast<int64_t>(sizeof(float));
  return total;
}

int GpuKvCache::device() const {
  return impl_->device;
}

#else  // built without CUDA: the constructor always refuses.

struct GpuKvCache::Impl {
  KvCacheBook book{0};
  int64_t kv_dim = 0;
};

GpuKvCache::GpuKvCache(int64_t, int64_t, int device) {
  require_cuda_device(device, "GPU kv cache");
}
GpuKvCache::~GpuKvCache() = default;
const float* GpuKvCache::keys(uint64_t, int64_t) const {
  return nullptr;
}
const float* GpuKvCache::values(uint64_t, int64_t) const {
  return nullptr;
}
void GpuKvCache::commit(uint64_t seq_id, int64_t n) {
  impl_->book.commit(seq_id, n);
}
void GpuKvCache::truncate(uint64_t seq_id, int64_t length) {
  impl_->book.truncate(seq_id, length);
}
void GpuKvCache::release(uint64_t seq_id) {
  impl_->book.release(seq_id);
}
int64_t GpuKvCache::allocated_bytes() const {
  return 0;
}
int GpuKvCache::device() const {
  return -1;
}

#endif

int64_t GpuKvCache::num_layers() const {
  return impl_->book.num_layers();
}
int64_t GpuKvCache::kv_dim() const {
  return impl_->kv_dim;
}
int64_t GpuKvCache::length(uint64_t seq_id) const {
  return impl_->book.length(seq_id);
}
bool GpuKvCache::contains(uint64_t seq_id) const {
  return impl_->book.contains(seq_id);
}
size_t GpuKvCache::sequence_count() const {
  return impl_->book.sequence_count();
}
int64_t GpuKvCache::bytes() const {
  return 2 * impl_->book.rows_total() * impl_->kv_dim * static_cast<int64_t>(sizeof(float));
}

}  // namespace moeflow
