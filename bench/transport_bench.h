#pragma once
// TokenBatch transport between two processes over TCP loopback: expert_request / expert_reply
// round trips through ZeroMQ and the wire codec, beside plain-socket TCP moving the same bytes in
// the same pattern (and streaming one way) in the same run, as the physical limit.
#include <cstdint>
#include <string>
#include <vector>

namespace moeflow::bench {

struct TransportBenchOptions {
  int64_t hidden = 1024;                               // f32 per row: 4 KiB rows
  int64_t top_k = 8;                                   // experts per row in the request
  std::vector<int64_t> rows = {1, 16, 64, 256, 1024};  // batch sizes, one table row each
  double seconds = 1.0;                                // per measurement
  int64_t repeats = 3;  // measurements per cell; the best is reported
  // Encode from shared_ptr (the frames point into the batch and the reply, as the node bridge
  // does with the actors' TokenBatchPtr) or copy the tensors into the frames.
  bool zero_copy = true;
  // transport::retain_freed_buffers() before forking, so in both processes.
  bool retain_memory = false;
};

int run_transport_bench(const TransportBenchOptions& opts);

}  // namespace moeflow::bench
