#include "transport/wire_format.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "transport/utf8.h"
#include "transport/wire_codec.h"

namespace moeflow::transport {

// The header and the tensors are copied to and from the wire with memcpy, so the layout of
// WireHeader is the wire layout and the host must be little-endian (x86-64, aarch64).
static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");
static_assert(sizeof(WireHeader) == kHeaderBytes);
static_assert(std::is_trivially_copyable_v<WireHeader>);
static_assert(offsetof(WireHeader, version) == 4 && offsetof(WireHeader, kind) == 6 &&
              offsetof(WireHeader, flags) == 8 && offsetof(WireHeader, frame_count) == 12 &&
              offsetof(WireHeader, request_id) == 16 && offsetof(WireHeader, graph_hash) == 24 &&
              offsetof(WireHeader, sender_id) == 32 && offsetof(WireHeader, layer) == 36 &&
              offsetof(WireHeader, rows) == 40 && offsetof(WireHeader, hidden) == 44 &&
              offsetof(WireHeader, top_k) == 48 && offsetof(WireHeader, status) == 52 &&
              offsetof(WireHeader, reserved) == 56);
static_assert(sizeof(float) == 4 && sizeof(int32_t) == 4 && sizeof(uint64_t) == 8);

// ---- helpers shared with the other files of the codec (wire_codec.h) -------------------------

namespace codec {

size_t body_frames_of(MessageKind kind) {
  switch (kind) {
    case MessageKind::hello:
    case MessageKind::hello_ack:
      return 2;  // model hash, node name
    case MessageKind::heartbeat:
    case MessageKind::bye:
      return 0;
    case MessageKind::expert_request:
      return 5;  // rows, experts, weights, seq_ids, positions
    case MessageKind::expert_reply:
      return 2;  // out, computed pairs
    case MessageKind::error:
      return 1;  // text
    case MessageKind::replica_add:
    case MessageKind::replica_drop:
      return 1;  // expert
    case MessageKind::replica_ready:
      return 2;  // expert, failure text
    case MessageKind::gpu_group:
      return 3;  // generation and rank count, unique id, members
    case MessageKind::gpu_group_ready:
      return 4;  // generation and device count, node name, device records, failure texts
  }
  return 0;
}

WireHeader make_header(MessageKind kind, const Origin& origin, uint64_t request_id) {
  WireHeader h;
  h.kind = static_cast<uint16_t>(kind);
  h.frame_count = static_cast<uint32_t>(body_frames_of(kind));
  h.request_id = request_id;
  h.graph_hash = origin.graph_hash;
  h.sender_id = origin.node_id;
  return h;
}

zmq::message_t header_frame(const WireHeader& h) {
  return zmq::message_t(&h, sizeof h);
}

namespace {

bool is_node_name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

}  // namespace

bool is_valid_node_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNodeNameBytes) return false;
  for (unsigned char c : name)
    if (!is_node_name_char(c)) return false;
  return true;
}

DecodeResult drop(DropReason reason, std::string detail) {
  DecodeResult r;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

std::string u64s(uint64_t v) {
  return std::to_string(v);
}

std::optional<DecodeResult> check_unused_zero(const WireHeader& h, bool layer, bool rows,
                                              bool hidden, bool top_k, bool status) {
  const struct {
    bool check;
    uint32_t value;
    const char* name;
  } fields[] = {{layer, h.layer, "layer"},
                {rows, h.rows, "rows"},
                {hidden, h.hidden, "hidden"},
                {top_k, h.top_k, "top_k"},
                {status, h.status, "status"}};
  for (const auto& f : fields)
    if (f.check && f.value != 0)
      return drop(DropReason::bad_field,
                  std::string(f.name) + " is " + u64s(f.value) + ", must be 0 for " +
                      std::string(message_kind_name(static_cast<MessageKind>(h.kind))));
  return std::nullopt;
}

}  // namespace codec

namespace {

using codec::body_frames_of;
using codec::check_unused_zero;
using codec::drop;
using codec::header_frame;
using codec::is_valid_node_name;
using codec::make_header;
using codec::u64s;

constexpr size_t kHashFrameBytes = 8;   // hello: model hash
constexpr size_t kStatsFrameBytes = 8;  // expert_reply: computed pairs

bool is_known_kind(uint16_t kind) {
  return kind >= static_cast<uint16_t>(MessageKind::hello) &&
         kind <= static_cast<uint16_t>(MessageKind::gpu_group_ready);
}

bool is_known_error_code(uint32_t code) {
  return code >= static_cast<uint32_t>(ErrorCode::internal) &&
         code <= static_cast<uint32_t>(ErrorCode::shutting_down);
}

// a * b * c, or nullopt on overflow.
std::optional<uint64_t> checked_product(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t ab, abc;
  if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc)) return std::nullopt;
  return abc;
}

// ---- encoding -------------------------------------------------------------------------------

zmq::message_t header_frame(MessageKind kind, const Origin& origin, uint64_t request_id) {
  return header_frame(make_header(kind, origin, request_id));
}

template <class T>
zmq::message_t copy_frame(const std::vector<T>& v) {
  return zmq::message_t(v.data(), v.size() * sizeof(T));
}

zmq::message_t copy_u64_frame(uint64_t value) {
  return zmq::message_t(&value, sizeof value);
}

// A frame over memory owned by `owner`: ZeroMQ calls the free function (on its I/O thread) when
// it has sent the frame, which drops this frame's reference.
zmq::message_t keepalive_frame(const void* data, size_t bytes,
                               const std::shared_ptr<const void>& owner) {
  auto hint = std::make_unique<std::shared_ptr<const void>>(owner);
  zmq::message_t frame(
      const_cast<void*>(data), bytes,
      [](void*, void* h) { delete static_cast<std::shared_ptr<const void>*>(h); }, hint.get());
  hint.release();  // owned by the frame now
  return frame;
}

template <class T>
zmq::message_t keepalive_frame(const std::vector<T>& v, const std::shared_ptr<const void>& owner) {
  return keepalive_frame(v.data(), v.size() * sizeof(T), owner);
}

uint32_t to_u32_field(int64_t value, int64_t min, const char* what, const char* field) {
  if (value < min || value > int64_t{UINT32_MAX})
    throw Error(std::string(what) + ": " + field + " " + std::to_string(value) +
                " does not fit the wire field (" + std::to_string(min) + "..4294967295)");
  return static_cast<uint32_t>(value);
}

void check_vector(const char* what, const char* name, size_t actual, int64_t expected) {
  if (actual != static_cast<uint64_t>(expected))
    throw Error(std::string(what) + ": " + name + " holds " + std::to_string(actual) +
                " values, expected " + std::to_string(expected));
}

// Validates a batch about to be encoded and fills the tensor fields of the header.
void fill_request_header(WireHeader& h, const TokenBatch& b) {
  const char* what = "encode_expert_request";
  h.layer = to_u32_field(b.layer, 0, what, "layer");
  h.hidden = to_u32_field(b.hidden_size, 1, what, "hidden_size");
  h.top_k = to_u32_field(b.top_k, 1, what, "top_k");
  h.rows = to_u32_field(b.size(), 1, what, "rows (seq_ids.size())");
  check_vector(what, "rows", b.rows.size(), b.size() * b.hidden_size);
  check_vector(what, "experts", b.experts.size(), b.size() * b.top_k);
  check_vector(what, "weights", b.weights.size(), b.size() * b.top_k);
  check_vector(what, "positions", b.positions.size(), b.size());
}

void fill_reply_header(WireHeader& h, int64_t layer, int64_t hidden_size, size_t out_size) {
  const char* what = "encode_expert_reply";
  h.layer = to_u32_field(layer, 0, what, "layer");
  h.hidden = to_u32_field(hidden_size, 1, what, "hidden_size");
  if (out_size % static_cast<uint64_t>(hidden_size) != 0)
    throw Error(std::string(what) + ": out holds " + std::to_string(out_size) +
                " values, not a multiple of hidden_size " + std::to_string(hidden_size));
  h.rows = to_u32_field(static_cast<int64_t>(out_size) / hidden_size, 1, what, "rows");
}

std::vector<zmq::message_t> encode_hello_kind(MessageKind kind, const Hello& hello) {
  if (!is_valid_node_name(hello.node_name))
    throw Error("node name \"" + hello.node_name + "\": must be 1.." +
                std::to_string(kMaxNodeNameBytes) +
                " bytes of letters, digits, '.', '_', '-' or ':'");
  std::vector<zmq::message_t> frames;
  frames.push_back(header_frame(kind, {hello.node_id, hello.graph_hash}, 0));
  frames.push_back(copy_u64_frame(hello.model_hash));
  frames.emplace_back(hello.node_name.data(), hello.node_name.size());
  return frames;
}

// ---- decoding -------------------------------------------------------------------------------

// Rows, hidden and layer of a request or reply against this node's limits.
std::optional<DecodeResult> check_tensor_shape(const WireHeader& h, const DecodeLimits& limits) {
  if (h.rows == 0) return drop(DropReason::bad_field, "rows is 0");
  if (h.rows > limits.max_rows)
    return drop(DropReason::too_large,
                "rows " + u64s(h.rows) + " over max_rows " + u64s(limits.max_rows));
  if (h.hidden != limits.hidden)
    return drop(DropReason::bad_field,
                "hidden " + u64s(h.hidden) + " differs from the model's " + u64s(limits.hidden));
  if (h.layer >= limits.num_layers)
    return drop(DropReason::bad_field, "layer " + u64s(h.layer) + " out of range (num_layers " +
                                           u64s(limits.num_layers) + ")");
  return std::nullopt;
}

// Expected byte size of a tensor frame; the product is checked against max_frame_bytes first.
std::optional<DecodeResult> check_frame_size(const zmq::message_t& frame, const char* name,
                                             uint64_t count, uint64_t element_bytes,
                                             const DecodeLimits& limits) {
  const auto expected = checked_product(count, element_bytes, 1);
  if (!expected || *expected > limits.max_frame_bytes)
    return drop(DropReason::too_large, std::string(name) + " frame would be " +
                                           (expected ? u64s(*expected) : std::string("> 2^64")) +
                                           " bytes, over max_frame_bytes " +
                                           u64s(limits.max_frame_bytes));
  if (frame.size() != *expected)
    return drop(DropReason::size_mismatch, std::string(name) + " frame is " + u64s(frame.size()) +
                                               " bytes, header implies " + u64s(*expected));
  return std::nullopt;
}

// Copies a frame (whose size is a multiple of sizeof(T)) into a vector. A large frame is its own
// malloc'd block, aligned, and is copied in one pass; a small one may sit at any offset of
// ZeroMQ's shared receive buffer and goes through memcpy after a zero-fill.
template <class T>
void copy_out(const zmq::message_t& frame, std::vector<T>& out) {
  const size_t n = frame.size() / sizeof(T);
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(T) == 0) {
    const T* first = static_cast<const T*>(frame.data());
    out.assign(first, first + n);
  } else {
    out.resize(n);
    if (n > 0) std::memcpy(out.data(), frame.data(), n * sizeof(T));
  }
}

uint64_t read_u64(const zmq::message_t& frame) {
  uint64_t v;
  std::memcpy(&v, frame.data(), sizeof v);
  return v;
}

DecodeResult decode_hello(const WireHeader& h, const std::vector<zmq::message_t>& frames) {
  if (auto bad = check_unused_zero(h, true, true, true, true, true)) return *bad;
  if (frames[1].size() != kHashFrameBytes)
    return drop(DropReason::size_mismatch,
                "model hash frame is " + u64s(frames[1].size()) + " bytes, expected 8");
  const std::string_view name(frames[2].data<char>(), frames[2].size());
  if (name.size() > kMaxNodeNameBytes)
    return drop(DropReason::too_large,
                "node name is " + u64s(name.size()) + " bytes, over " + u64s(kMaxNodeNameBytes));
  if (!is_valid_node_name(name))
    return drop(DropReason::bad_text,
                "node name is empty or has characters outside [A-Za-z0-9._:-]");
  Hello hello;
  hello.node_name.assign(name);
  hello.node_id = h.sender_id;
  hello.graph_hash = h.graph_hash;
  hello.model_hash = read_u64(frames[1]);
  DecodeResult r;
  r.message = Message{h, std::move(hello)};
  return r;
}

DecodeResult decode_request(const WireHeader& h, const std::vector<zmq::message_t>& frames,
                            const DecodeLimits& limits) {
  if (auto bad = check_unused_zero(h, false, false, false, false, true)) return *bad;
  if (auto bad = check_tensor_shape(h, limits)) return *bad;
  if (h.top_k == 0) return drop(DropReason::bad_field, "top_k is 0");
  if (h.top_k > limits.max_top_k)
    return drop(DropReason::too_large,
                "top_k " + u64s(h.top_k) + " over max_top_k " + u64s(limits.max_top_k));
  const uint64_t cells = uint64_t{h.rows} * h.hidden;  // both u32: no overflow
  const uint64_t picks = uint64_t{h.rows} * h.top_k;
  if (auto bad = check_frame_size(frames[1], "rows", cells, 4, limits)) return *bad;
  if (auto bad = check_frame_size(frames[2], "experts", picks, 4, limits)) return *bad;
  if (auto bad = check_frame_size(frames[3], "weights", picks, 4, limits)) return *bad;
  if (auto bad = check_frame_size(frames[4], "seq_ids", h.rows, 8, limits)) return *bad;
  if (auto bad = check_frame_size(frames[5], "positions", h.rows, 4, limits)) return *bad;

  // Every size is now known to be within limits: allocate and copy.
  TokenBatch b;
  b.layer = h.layer;
  b.hidden_size = h.hidden;
  b.top_k = h.top_k;
  copy_out(frames[2], b.experts);
  for (size_t i = 0; i < b.experts.size(); ++i) {
    const int32_t e = b.experts[i];
    if (e != -1 && (e < 0 || static_cast<uint32_t>(e) >= limits.num_experts))
      return drop(DropReason::bad_field, "expert id " + std::to_string(e) + " at row " +
                                             u64s(i / h.top_k) + " out of range (num_experts " +
                                             u64s(limits.num_experts) + ")");
  }
  copy_out(frames[5], b.positions);
  for (size_t i = 0; i < b.positions.size(); ++i)
    if (b.positions[i] < 0)
      return drop(DropReason::bad_field, "position " + std::to_string(b.positions[i]) + " at row " +
                                             u64s(i) + " is negative");
  copy_out(frames[1], b.rows);
  copy_out(frames[3], b.weights);
  copy_out(frames[4], b.seq_ids);
  DecodeResult r;
  r.message = Message{h, std::move(b)};
  return r;
}

DecodeResult decode_reply(const WireHeader& h, const std::vector<zmq::message_t>& frames,
                          const DecodeLimits& limits) {
  if (auto bad = check_unused_zero(h, false, false, false, true, true)) return *bad;
  if (auto bad = check_tensor_shape(h, limits)) return *bad;
  if (auto bad = check_frame_size(frames[1], "out", uint64_t{h.rows} * h.hidden, 4, limits))
    return *bad;
  if (frames[2].size() != kStatsFrameBytes)
    return drop(DropReason::size_mismatch,
                "computed pairs frame is " + u64s(frames[2].size()) + " bytes, expected 8");
  ExpertReply reply;
  reply.layer = h.layer;
  reply.hidden_size = h.hidden;
  copy_out(frames[1], reply.out);
  reply.computed_pairs = read_u64(frames[2]);
  DecodeResult r;
  r.message = Message{h, std::move(reply)};
  return r;
}

// The text frame of an error or a replica_ready: bounded, valid UTF-8.
std::optional<DecodeResult> check_text_frame(const zmq::message_t& frame, const char* what) {
  const std::string_view text(frame.data<char>(), frame.size());
  if (text.size() > kMaxErrorTextBytes)
    return drop(DropReason::too_large, std::string(what) + " is " + u64s(text.size()) +
                                           " bytes, over " + u64s(kMaxErrorTextBytes));
  if (!is_valid_utf8(text))
    return drop(DropReason::bad_text, std::string(what) + " is not valid UTF-8");
  return std::nullopt;
}

DecodeResult decode_replica_control(const WireHeader& h, const std::vector<zmq::message_t>& frames,
                                    const DecodeLimits& limits) {
  if (auto bad = check_unused_zero(h, false, true, true, true, true)) return *bad;
  if (h.layer >= limits.num_layers)
    return drop(DropReason::bad_field, "layer " + u64s(h.layer) + " out of range (num_layers " +
                                           u64s(limits.num_layers) + ")");
  if (frames[1].size() != sizeof(int32_t))
    return drop(DropReason::size_mismatch,
                "expert frame is " + u64s(frames[1].size()) + " bytes, expected 4");
  ReplicaControl c;
  c.layer = h.layer;
  std::memcpy(&c.expert, frames[1].data(), sizeof c.expert);
  if (c.expert < 0 || static_cast<uint32_t>(c.expert) >= limits.num_experts)
    return drop(DropReason::bad_field, "expert id " + std::to_string(c.expert) +
                                           " out of range (num_experts " +
                                           u64s(limits.num_experts) + ")");
  if (frames.size() > 2) {
    if (auto bad = check_text_frame(frames[2], "failure text")) return *bad;
    c.failure.assign(frames[2].data<char>(), frames[2].size());
  }
  DecodeResult r;
  r.message = Message{h, std::move(c)};
  return r;
}

DecodeResult decode_error(const WireHeader& h, const std::vector<zmq::message_t>& frames) {
  if (auto bad = check_unused_zero(h, true, true, true, true, false)) return *bad;
  if (!is_known_error_code(h.status))
    return drop(DropReason::bad_field, "error code " + u64s(h.status) + " is not defined");
  if (auto bad = check_text_frame(frames[1], "error text")) return *bad;
  const std::string_view text(frames[1].data<char>(), frames[1].size());
  ErrorMessage e;
  e.code = static_cast<ErrorCode>(h.status);
  e.text.assign(text);
  DecodeResult r;
  r.message = Message{h, std::move(e)};
  return r;
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------

std::string_view message_kind_name(MessageKind kind) {
  switch (kind) {
    case MessageKind::hello:
      return "hello";
    case MessageKind::hello_ack:
      return "hello_ack";
    case MessageKind::heartbeat:
      return "heartbeat";
    case MessageKind::expert_request:
      return "expert_request";
    case MessageKind::expert_reply:
      return "expert_reply";
    case MessageKind::error:
      return "error";
    case MessageKind::bye:
      return "bye";
    case MessageKind::replica_add:
      return "replica_add";
    case MessageKind::replica_drop:
      return "replica_drop";
    case MessageKind::replica_ready:
      return "replica_ready";
    case MessageKind::gpu_group:
      return "gpu_group";
    case MessageKind::gpu_group_ready:
      return "gpu_group_ready";
  }
  return "unknown";
}

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::incompatible_peer:
      return "incompatible_peer";
    case ErrorCode::bad_request:
      return "bad_request";
    case ErrorCode::overloaded:
      return "overloaded";
    case ErrorCode::shutting_down:
      return "shutting_down";
  }
  return "unknown";
}

uint64_t largest_frame_bytes(const DecodeLimits& limits) {
  const uint64_t rows = limits.max_rows;
  uint64_t largest = std::max<uint64_t>(
      {kHeaderBytes, kMaxErrorTextBytes, kMaxNodeNameBytes, rows * 8, rows * limits.max_top_k * 4,
       kMaxGpuGroupRanks * kGpuGroupMemberBytes, kMaxGpuGroupNodeDevices * kMaxErrorTextBytes});
  largest = std::max(largest, checked_product(rows, limits.hidden, 4).value_or(UINT64_MAX));
  return std::min(largest, limits.max_frame_bytes);
}

std::vector<zmq::message_t> encode_hello(const Hello& hello) {
  return encode_hello_kind(MessageKind::hello, hello);
}

std::vector<zmq::message_t> encode_hello_ack(const Hello& hello) {
  return encode_hello_kind(MessageKind::hello_ack, hello);
}

std::vector<zmq::message_t> encode_heartbeat(const Origin& origin) {
  std::vector<zmq::message_t> frames;
  frames.push_back(header_frame(MessageKind::heartbeat, origin, 0));
  return frames;
}

std::vector<zmq::message_t> encode_bye(const Origin& origin) {
  std::vector<zmq::message_t> frames;
  frames.push_back(header_frame(MessageKind::bye, origin, 0));
  return frames;
}

std::vector<zmq::message_t> encode_expert_request(uint64_t request_id, const TokenBatch& batch,
                                                  const Origin& origin) {
  std::vector<zmq::message_t> frames;
  frames.reserve(6);
  WireHeader h = make_header(MessageKind::expert_request, origin, request_id);
  fill_request_header(h, batch);
  frames.push_back(header_frame(h));
  frames.push_back(copy_frame(batch.rows));
  frames.push_back(copy_frame(batch.experts));
  frames.push_back(copy_frame(batch.weights));
  frames.push_back(copy_frame(batch.seq_ids));
  frames.push_back(copy_frame(batch.positions));
  return frames;
}

std::vector<zmq::message_t> encode_expert_request(uint64_t request_id,
                                                  std::shared_ptr<const TokenBatch> batch,
                                                  const Origin& origin) {
  if (!batch) throw Error("encode_expert_request: null batch");
  std::vector<zmq::message_t> frames;
  frames.reserve(6);
  WireHeader h = make_header(MessageKind::expert_request, origin, request_id);
  fill_request_header(h, *batch);
  frames.push_back(header_frame(h));
  const std::shared_ptr<const void> owner = batch;
  frames.push_back(keepalive_frame(batch->rows, owner));
  frames.push_back(keepalive_frame(batch->experts, owner));
  frames.push_back(keepalive_frame(batch->weights, owner));
  frames.push_back(keepalive_frame(batch->seq_ids, owner));
  frames.push_back(keepalive_frame(batch->positions, owner));
  return frames;
}

std::vector<zmq::message_t> encode_expert_reply(uint64_t request_id, const ExpertReply& reply,
                                                const Origin& origin) {
  std::vector<zmq::message_t> frames;
  frames.reserve(3);
  WireHeader h = make_header(MessageKind::expert_reply, origin, request_id);
  fill_reply_header(h, reply.layer, reply.hidden_size, reply.out.size());
  frames.push_back(header_frame(h));
  frames.push_back(copy_frame(reply.out));
  frames.push_back(copy_u64_frame(reply.computed_pairs));
  return frames;
}

std::vector<zmq::message_t> encode_expert_reply(uint64_t request_id, const ExpertReplyView& reply,
                                                std::shared_ptr<const void> keepalive,
                                                const Origin& origin) {
  if (!keepalive) throw Error("encode_expert_reply: null keepalive");
  std::vector<zmq::message_t> frames;
  frames.reserve(3);
  WireHeader h = make_header(MessageKind::expert_reply, origin, request_id);
  fill_reply_header(h, reply.layer, reply.hidden_size, reply.out.size());
  frames.push_back(header_frame(h));
  frames.push_back(keepalive_frame(reply.out.data(), reply.out.size_bytes(), keepalive));
  frames.push_back(copy_u64_frame(reply.computed_pairs));
  return frames;
}

std::vector<zmq::message_t> encode_expert_reply(uint64_t request_id,
                                                std::shared_ptr<const ExpertReply> reply,
                                                const Origin& origin) {
  if (!reply) throw Error("encode_expert_reply: null reply");
  const ExpertReplyView view{reply->layer, reply->hidden_size, reply->out, reply->computed_pairs};
  return encode_expert_reply(request_id, view, std::move(reply), origin);
}

std::vector<zmq::message_t> encode_error(uint64_t request_id, ErrorCode code, std::string_view text,
                                         const Origin& origin) {
  const std::string clean = sanitize_utf8(text, kMaxErrorTextBytes);
  std::vector<zmq::message_t> frames;
  WireHeader h = make_header(MessageKind::error, origin, request_id);
  h.status = static_cast<uint32_t>(code);
  frames.push_back(header_frame(h));
  frames.emplace_back(clean.data(), clean.size());
  return frames;
}

std::vector<zmq::message_t> encode_replica_control(MessageKind kind, uint64_t request_id,
                                                   const ReplicaControl& control,
                                                   const Origin& origin) {
  const char* what = "encode_replica_control";
  if (kind != MessageKind::replica_add && kind != MessageKind::replica_drop &&
      kind != MessageKind::replica_ready)
    throw Error(std::string(what) + ": " + std::string(message_kind_name(kind)) +
                " is not a replica kind");
  WireHeader h = make_header(kind, origin, request_id);
  h.layer = to_u32_field(control.layer, 0, what, "layer");
  to_u32_field(control.expert, 0, what, "expert");
  std::vector<zmq::message_t> frames;
  frames.push_back(header_frame(h));
  frames.emplace_back(&control.expert, sizeof control.expert);
  if (kind == MessageKind::replica_ready) {
    const std::string clean = sanitize_utf8(control.failure, kMaxErrorTextBytes);
    frames.emplace_back(clean.data(), clean.size());
  }
  return frames;
}

DecodeResult decode(const std::vector<zmq::message_t>& frames, const DecodeLimits& limits) {
  if (frames.empty()) return drop(DropReason::empty_message, "no frames");
  if (frames.size() > 1 + kMaxBodyFrames)
    return drop(DropReason::frame_count, u64s(frames.size()) + " frames, at most " +
                                             u64s(1 + kMaxBodyFrames) + " in any message");
  for (size_t i = 0; i < frames.size(); ++i)
    if (frames[i].size() > limits.max_frame_bytes)
      return drop(DropReason::too_large, "frame " + u64s(i) + " is " + u64s(frames[i].size()) +
                                             " bytes, over max_frame_bytes " +
                                             u64s(limits.max_frame_bytes));

  // The magic and the version sit at fixed offsets in every version, so they are checked on
  // however many bytes arrived: a peer speaking another version is told so, not "truncated".
  const zmq::message_t& head = frames[0];
  const auto* bytes = head.data<unsigned char>();
  if (head.size() < 4)
    return drop(DropReason::truncated_header,
                "header frame is " + u64s(head.size()) + " bytes, expected " + u64s(kHeaderBytes));
  uint32_t magic;
  std::memcpy(&magic, bytes, 4);
  if (magic != kWireMagic) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    return drop(DropReason::bad_magic, std::string("magic ") + hex + ", not a moeflow message");
  }
  if (head.size() < 6)
    return drop(DropReason::truncated_header,
                "header frame is " + u64s(head.size()) + " bytes, expected " + u64s(kHeaderBytes));
  uint16_t version;
  std::memcpy(&version, bytes + 4, 2);
  if (version != kWireVersion)
    return drop(DropReason::bad_version,
                "protocol version " + u64s(version) + ", this node speaks " + u64s(kWireVersion));
  if (head.size() < kHeaderBytes)
    return drop(DropReason::truncated_header,
                "header frame is " + u64s(head.size()) + " bytes, expected " + u64s(kHeaderBytes));
  if (head.size() > kHeaderBytes)
    return drop(DropReason::size_mismatch,
                "header frame is " + u64s(head.size()) + " bytes, expected " + u64s(kHeaderBytes));

  WireHeader h;
  std::memcpy(&h, bytes, kHeaderBytes);
  if (!is_known_kind(h.kind))
    return drop(DropReason::bad_kind, "kind " + u64s(h.kind) + " unknown");
  const auto kind = static_cast<MessageKind>(h.kind);
  if (h.flags != 0)
    return drop(DropReason::nonzero_reserved, "flags " + u64s(h.flags) + ", none are defined");
  for (size_t i = 0; i < sizeof h.reserved; ++i)
    if (h.reserved[i] != 0)
      return drop(DropReason::nonzero_reserved,
                  "reserved header byte " + u64s(offsetof(WireHeader, reserved) + i) + " is not 0");
  if (h.frame_count != frames.size() - 1)
    return drop(DropReason::frame_count, "header says " + u64s(h.frame_count) + " frames follow, " +
                                             u64s(frames.size() - 1) + " did");
  if (h.frame_count != body_frames_of(kind))
    return drop(DropReason::frame_count, std::string(message_kind_name(kind)) + " has " +
                                             u64s(body_frames_of(kind)) + " body frames, got " +
                                             u64s(h.frame_count));

  switch (kind) {
    case MessageKind::hello:
    case MessageKind::hello_ack:
      return decode_hello(h, frames);
    case MessageKind::heartbeat:
    case MessageKind::bye: {
      if (auto bad = check_unused_zero(h, true, true, true, true, true)) return *bad;
      DecodeResult r;
      r.message = Message{h, std::monostate{}};
      return r;
    }
    case MessageKind::expert_request:
      return decode_request(h, frames, limits);
    case MessageKind::expert_reply:
      return decode_reply(h, frames, limits);
    case MessageKind::error:
      return decode_error(h, frames);
    case MessageKind::replica_add:
    case MessageKind::replica_drop:
    case MessageKind::replica_ready:
      return decode_replica_control(h, frames, limits);
    case MessageKind::gpu_group:
      return codec::decode_gpu_group(h, frames);
    case MessageKind::gpu_group_ready:
      return codec::decode_gpu_group_ready(h, frames);
  }
  return drop(DropReason::bad_kind, "kind " + u64s(h.kind) + " unknown");
}

}  // namespace moeflow::transport
