#pragma once
// The unit of work between the router stage and the expert stages: for one layer, the normalised
// hidden state of each token row and the experts the router chose for it, with their weights.
// Later this is what moves between actors (in one process without copying its tensor) and between
// nodes (one header frame, raw tensor frames).
#include <cstdint>
#include <memory>
#include <vector>

namespace moeflow {

struct TokenBatch {
  int64_t layer = 0;
  int64_t hidden_size = 0;
  int64_t top_k = 0;
  std::vector<float> rows;         // [size(), hidden_size]: input of the experts
  std::vector<uint64_t> seq_ids;   // per row: the sequence it belongs to
  std::vector<int32_t> positions;  // per row: its position in that sequence
  std::vector<int32_t> experts;    // [size(), top_k]: chosen expert ids, best first
  std::vector<float> weights;      // [size(), top_k]: their combine weights

  int64_t size() const { return static_cast<int64_t>(seq_ids.size()); }
  const float* row(int64_t r) const { return rows.data() + r * hidden_size; }
};

// How a TokenBatch travels between stages and actors of one process: shared, never copied.
using TokenBatchPtr = std::shared_ptr<const TokenBatch>;

}  // namespace moeflow
