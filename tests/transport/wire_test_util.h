#pragma once
// Shared by the transport tests: small limits, batches to send, and raw frame editing so that a
// test can build any malformed message.
#include <gtest/gtest.h>
#include <zmq.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/token_batch.h"
#include "transport/wire_format.h"

namespace moeflow::transport::test_util {

inline DecodeLimits small_limits() {
  DecodeLimits l;
  l.max_rows = 64;
  l.hidden = 8;
  l.max_top_k = 4;
  l.num_layers = 4;
  l.num_experts = 16;
  l.max_frame_bytes = 1 << 20;
  return l;
}

// A batch whose every value is distinct, so a swapped or shifted frame shows.
inline TokenBatch make_batch(int64_t rows, int64_t hidden, int64_t top_k, int64_t layer,
                             uint64_t seed, int32_t num_experts = 16) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(-4.0f, 4.0f);
  TokenBatch b;
  b.layer = layer;
  b.hidden_size = hidden;
  b.top_k = top_k;
  for (int64_t i = 0; i < rows * hidden; ++i) b.rows.push_back(value(rng));
  for (int64_t r = 0; r < rows; ++r) {
    b.seq_ids.push_back(rng());
    b.positions.push_back(static_cast<int32_t>(rng() % 100000));
    for (int64_t k = 0; k < top_k; ++k) {
      // -1 (not for this shard) now and then.
      b.experts.push_back(rng() % 5 == 0 ? -1 : static_cast<int32_t>(rng() % num_experts));
      b.weights.push_back(value(rng));
    }
  }
  return b;
}

// Frames as byte strings, for editing; and back.
inline std::vector<std::string> to_bytes(const std::vector<zmq::message_t>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames) out.push_back(f.to_string());
  return out;
}

inline std::vector<zmq::message_t> to_frames(const std::vector<std::string>& bytes) {
  std::vector<zmq::message_t> out;
  for (const auto& b : bytes) out.emplace_back(b.data(), b.size());
  return out;
}

// Re-encodes a message with its header edited.
inline std::vector<zmq::message_t> with_header(const std::vector<zmq::message_t>& frames,
                                               const std::function<void(WireHeader&)>& edit) {
  auto bytes = to_bytes(frames);
  WireHeader h;
  std::memcpy(&h, bytes[0].data(), sizeof h);
  edit(h);
  std::memcpy(bytes[0].data(), &h, sizeof h);
  return to_frames(bytes);
}

// Re-encodes a message with one frame replaced.
inline std::vector<zmq::message_t> with_frame(const std::vector<zmq::message_t>& frames,
                                              size_t index, const std::string& bytes) {
  auto all = to_bytes(frames);
  all.at(index) = bytes;
  return to_frames(all);
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Decodes a message that must be dropped for `reason` under `limits`, with a detail
// (containing `detail_part` when one is given); returns the result.
inline DecodeResult expect_drop(const std::vector<zmq::message_t>& frames, DropReason reason,
                                const std::string& detail_part,
                                const DecodeLimits& limits = small_limits()) {
  DecodeResult r;
  EXPECT_NO_THROW(r = decode(frames, limits));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(drop_reason_name(r.reason), drop_reason_name(reason)) << r.detail;
  EXPECT_FALSE(r.detail.empty());
  if (!detail_part.empty()) {
    EXPECT_NE(r.detail.find(detail_part), std::string::npos) << r.detail;
  }
  return r;
}
inline DecodeResult expect_drop(const std::vector<zmq::message_t>& frames, DropReason reason,
                                const DecodeLimits& limits = small_limits()) {
  return expect_drop(frames, reason, "", limits);
}

// Calls `encode`, which must refuse with a moeflow::Error whose text contains `part`.
template <class Encode>
void expect_encoder_refuses(const Encode& encode, const std::string& part) {
  try {
    encode();
    ADD_FAILURE() << "accepted; expected an error containing " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

}  // namespace moeflow::transport::test_util
