#pragma once
// Page-locked host staging for the small uploads a GPU stage queues per call (token ids,
// positions, attention tables, masks) without waiting for its stream: one slot per producer (a
// layer, the embedding), each its own PinnedBuffer and an event recorded after the copies queued
// from it. Filling a slot again first waits for that event, so a slot is never rewritten under a
// copy still in flight, while the other slots' copies run on. Include only where
// MOEFLOW_HAVE_CUDA is set; the device current at construction must stay current for its use.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "model/gpu_buffer.h"

namespace moeflow {

class PinnedStaging {
 public:
  // `slots` independent slots; `who` prefixes every error ("GPU router stage on cuda:0").
  PinnedStaging(size_t slots, std::string who) : slots_(slots), who_(std::move(who)) {
    for (Slot& s : slots_)
      cuda_ok(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming),
              who_ + ": cudaEventCreate for a staging slot");
  }
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  // Host memory of at least `bytes` for slot `slot`, free to fill: the copies queued from it
  // last time have finished. `what` names the slot's use in errors.
  unsigned char* fill(size_t slot, size_t bytes, const char* what) {
    Slot& s = at(slot, what);
    if (s.queued) cuda_ok(cudaEventSynchronize(s.copied), who_ + ": wait for " + what);
    s.queued = false;
    s.memory.reserve(bytes, what);
    return s.memory.as<unsigned char>();
  }

  // Marks the copies queued from slot `slot` on `stream` so far: the next fill() waits for them.
  void queued(size_t slot, cudaStream_t stream, const char* what) {
    Slot& s = at(slot, what);
    cuda_ok(cudaEventRecord(s.copied, stream), who_ + ": cudaEventRecord after " + what);
    s.queued = true;
  }

 private:
  struct Slot {
    PinnedBuffer memory;
    cudaEvent_t copied = nullptr;
    bool queued = false;
    ~Slot() {
      if (copied) cudaEventDestroy(copied);
    }
  };
  Slot& at(size_t slot, const char* what) {
    if (slot >= slots_.size())
      throw Error(who_ + ": staging slot " + std::to_string(slot) + " of " +
                  std::to_string(slots_.size()) + " for " + what);
    return slots_[slot];
  }
  std::vector<Slot> slots_;
  std::string who_;
};

}  // namespace moeflow
