#pragma once
// The wire format between nodes: a ZeroMQ multipart message made of one fixed 64-byte header frame
// and raw little-endian tensor frames. This header and wire_format.cpp are the one codec (the
// bodies of gpu_group and gpu_group_ready are in wire_gpu_group*.cpp, sharing wire_codec.h); the
// layout is documented byte by byte in docs/wire-format.md.
//
// Decoding treats every message as untrusted: each header field and each frame size is checked
// against the receiving node's DecodeLimits before anything is allocated or copied, and a bad
// message comes back as a DropReason with a detail string, never as an exception or a crash.
#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "model/token_batch.h"
#include "transport/drop_reason.h"
#include "transport/gpu_group.h"

namespace moeflow::transport {

inline constexpr uint32_t kWireMagic = 0x46454F4Du;  // the bytes "MOEF" read as a little-endian u32
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kHeaderBytes = 64;
inline constexpr size_t kMaxBodyFrames = 5;         // frames after the header, any kind
inline constexpr size_t kMaxNodeNameBytes = 64;     // hello / hello_ack node name
inline constexpr size_t kMaxErrorTextBytes = 1024;  // error message text
// gpu_group: one member record is rank u32, device u32, name length u32, name padded to 64 bytes.
inline constexpr size_t kGpuGroupMemberBytes = 12 + kMaxNodeNameBytes;
// gpu_group_ready: one device record is device u32, failure text length u32.
inline constexpr size_t kGpuDeviceOutcomeBytes = 8;

enum class MessageKind : uint16_t {
  hello = 1,             // first message on a connection: who I am, which graph and model I serve
  hello_ack = 2,         // the answer to hello, same body
  heartbeat = 3,         // liveness, header only
  expert_request = 4,    // a TokenBatch for the experts of one layer
  expert_reply = 5,      // the weighted expert outputs for the rows of one request
  error = 6,             // a request failed or the peer is refused; code in status, text frame
  bye = 7,               // orderly shutdown of the sender, header only
  replica_add = 8,       // load a replica of one (layer, expert) and serve it
  replica_drop = 9,      // stop serving a replica added with replica_add
  replica_ready = 10,    // the answer to replica_add / replica_drop: done, or why not
  gpu_group = 11,        // the NCCL group of the GPU shards: generation, unique id, members
  gpu_group_ready = 12,  // a member node's answer to gpu_group: per device formed, or why not
};
std::string_view message_kind_name(MessageKind kind);  // "expert_request"

// The status field of an error message.
enum class ErrorCode : uint32_t {
  internal = 1,
  incompatible_peer = 2,  // version, graph hash or model hash differ (see handshake.h)
  bad_request = 3,        // the request was dropped by decode; the text says why
  overloaded = 4,
  shutting_down = 5,
};
std::string_view error_code_name(ErrorCode code);

// The header frame, exactly as it lies on the wire (little-endian hosts only).
struct WireHeader {
  uint32_t magic = kWireMagic;
  uint16_t version = kWireVersion;
  uint16_t kind = 0;         // a MessageKind; raw here because a received one may be anything
  uint32_t flags = 0;        // no flags are defined in version 1: must be zero
  uint32_t frame_count = 0;  // frames after the header
  uint64_t request_id = 0;   // expert_request, its reply or error; free for other kinds
  uint64_t graph_hash = 0;   // the sender's graph
  uint32_t sender_id = 0;    // the sender's node id
  uint32_t layer = 0;
  uint32_t rows = 0;
  uint32_t hidden = 0;
  uint32_t top_k = 0;
  uint32_t status = 0;  // error: an ErrorCode; every other kind: zero
  uint8_t reserved[8] = {};
};

// What the receiving node accepts. Tensor messages must match its model exactly (hidden) and
// stay within its capacity (rows, top_k); every frame is bounded by max_frame_bytes.
struct DecodeLimits {
  uint32_t max_rows = 4096;
  uint32_t hidden = 0;  // the model's hidden size: requests and replies must carry exactly this
  uint32_t max_top_k = 16;
  uint32_t num_layers = 0;   // layer must be < num_layers
  uint32_t num_experts = 0;  // expert ids must be in [0, num_experts) or -1
  uint64_t max_frame_bytes = uint64_t{64} << 20;
};

// The largest frame a valid message can have under these limits: the value for ZMQ_MAXMSGSIZE.
uint64_t largest_frame_bytes(const DecodeLimits& limits);

// Who sent a message: stamped into every header.
struct Origin {
  uint32_t node_id = 0;
  uint64_t graph_hash = 0;
};

struct Hello {
  std::string node_name;  // 1..64 bytes of [A-Za-z0-9._:-]
  uint32_t node_id = 0;
  uint64_t graph_hash = 0;
  uint64_t model_hash = 0;
};

struct ExpertReply {
  int64_t layer = 0;
  int64_t hidden_size = 0;
  std::vector<float> out;       // [size(), hidden_size]: each row's weighted sum of its experts
  uint64_t computed_pairs = 0;  // (row, expert) pairs this shard computed

  int64_t size() const {
    return hidden_size > 0 ? static_cast<int64_t>(out.size()) / hidden_size : 0;
  }
};

// The fields of a reply whose output lives in memory owned by someone else (an actor's
// ExpertOutput, say), for the zero-copy encoder.
struct ExpertReplyView {
  int64_t layer = 0;
  int64_t hidden_size = 0;
  std::span<const float> out;  // [rows, hidden_size]
  uint64_t computed_pairs = 0;
};

// replica_add / replica_drop / replica_ready: one (layer, expert) of the node's added replicas.
// request_id pairs an answer with its request.
struct ReplicaControl {
  int64_t layer = 0;
  int32_t expert = 0;
  std::string failure;  // replica_ready only: empty when done, else why not (UTF-8, <= 1024 B)
};

struct ErrorMessage {
  ErrorCode code = ErrorCode::internal;
  std::string text;  // valid UTF-8, at most kMaxErrorTextBytes
};

// A decoded, validated message. The body's alternative follows the kind: heartbeat and bye have
// none, hello and hello_ack a Hello, expert_request a TokenBatch, expert_reply an ExpertReply,
// error an ErrorMessage, the replica kinds a ReplicaControl, gpu_group a GpuGroup,
// gpu_group_ready a GpuGroupReady.
struct Message {
  WireHeader header;
  std::variant<std::monostate, Hello, TokenBatch, ExpertReply, ErrorMessage, ReplicaControl,
               GpuGroup, GpuGroupReady>
      body;

  MessageKind kind() const { return static_cast<MessageKind>(header.kind); }
  uint64_t request_id() const { return header.request_id; }
};

struct DecodeResult {
  std::optional<Message> message;                 // set when the message is valid
  DropReason reason = DropReason::empty_message;  // why not, when it is not
  std::string detail;  // context for the log: "rows 2147483648 over max_rows 4096"

  bool ok() const { return message.has_value(); }
};

// Encoders. Their inputs come from this process, so an inconsistent one (a TokenBatch whose
// vectors disagree with its sizes, a bad node name) is a bug and throws moeflow::Error naming
// the field. Each returns the frames to hand to zmq::send_multipart.
std::vector<zmq::message_t> encode_hello(const Hello& hello);
std::vector<zmq::message_t> encode_hello_ack(const Hello& hello);
std::vector<zmq::message_t> encode_heartbeat(const Origin& origin);
std::vector<zmq::message_t> encode_bye(const Origin& origin);
// One copy of the tensors into the frames.
std::vector<zmq::message_t> encode_expert_request(uint64_t request_id, const TokenBatch& batch,
                                                  const Origin& origin = {});
// No copy: the frames point into *batch and keep it alive until ZeroMQ has sent them. The batch
// must not change meanwhile (hence const).
std::vector<zmq::message_t> encode_expert_request(uint64_t request_id,
                                                  std::shared_ptr<const TokenBatch> batch,
                                                  const Origin& origin = {});
std::vector<zmq::message_t> encode_expert_reply(uint64_t request_id, const ExpertReply& reply,
                                                const Origin& origin = {});
// No copy: the output frame points into `reply.out`, and `keepalive` (which owns that memory)
// is held until ZeroMQ has sent it.
std::vector<zmq::message_t> encode_expert_reply(uint64_t request_id, const ExpertReplyView& reply,
                                                std::shared_ptr<const void> keepalive,
                                                const Origin& origin = {});
std::vector<zmq::message_t> encode_expert_reply(uint64_t request_id,
                                                std::shared_ptr<const ExpertReply> reply,
                                                const Origin& origin = {});
// The text is cut to kMaxErrorTextBytes at a character boundary and invalid UTF-8 bytes become
// '?', so that an error about bad input can always be sent.
std::vector<zmq::message_t> encode_error(uint64_t request_id, ErrorCode code, std::string_view text,
                                         const Origin& origin = {});

// kind: replica_add, replica_drop or replica_ready (whose failure text is cut like an error's).
std::vector<zmq::message_t> encode_replica_control(MessageKind kind, uint64_t request_id,
                                                   const ReplicaControl& control,
                                                   const Origin& origin = {});

// The controller's announcement of the NCCL group (docs/nccl.md). Throws moeflow::Error when the
// group would not decode: no members or more than kMaxGpuGroupRanks, generation 0, an all-zero
// unique id, a bad node name, a device index over the graph's limit, a (node, device) twice.
std::vector<zmq::message_t> encode_gpu_group(uint64_t request_id, const GpuGroup& group,
                                             const Origin& origin = {});

// A member node's answer to the gpu_group of `request_id` (docs/nccl.md). Failure texts are cut
// like an error's. Throws moeflow::Error when the answer would not decode: generation 0, no
// devices or more than kMaxGpuGroupNodeDevices, a bad node name, a device index over the graph's
// limit or listed twice.
std::vector<zmq::message_t> encode_gpu_group_ready(uint64_t request_id, const GpuGroupReady& ready,
                                                   const Origin& origin = {});

// Validates and decodes one received multipart message (without a ROUTER routing-id frame).
// Never throws on bad input; allocates only after every size has been checked against limits.
DecodeResult decode(const std::vector<zmq::message_t>& frames, const DecodeLimits& limits);

}  // namespace moeflow::transport
