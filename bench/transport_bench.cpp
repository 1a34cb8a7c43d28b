#include "bench/transport_bench.h"
#include "bench/bench_clock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "transport/memory_retention.h"
#include "transport/message_socket.h"
#include "transport/wire_format.h"

namespace moeflow::bench {
namespace {

using namespace std::chrono_literals;
using transport::DecodeLimits;
using transport::ExpertReply;
using transport::MessageKind;
using transport::MessageSocket;

constexpr auto kReplyTimeout = 10000ms;           // only reached when the other process is gone
constexpr size_t kStreamChunk = size_t{4} << 20;  // write size of the one-way stream

Error sys_error(const std::string& what) {
  return Error("transport bench: " + what + ": " + std::strerror(errno));
}

// ---- processes ------------------------------------------------------------------------------

// A forked child running `body` (its return value is the exit code); killed and reaped if it is
// still running when this goes out of scope.
class ChildProcess {
 public:
  explicit ChildProcess(const std::function<int()>& body) {
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ < 0) throw sys_error("fork");
    if (pid_ == 0) {
      int rc = 1;
      try {
        rc = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "transport bench responder: %s\n", e.what());
      }
      std::fflush(nullptr);
      _exit(rc);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits for the child to exit and returns its exit code.
  int wait() {
    int status = 0;
    if (waitpid(pid_, &status, 0) < 0) throw sys_error("waitpid");
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

// ---- plain sockets --------------------------------------------------------------------------

void write_all(int fd, const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw sys_error("write to the peer process");
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void read_all(int fd, void* data, size_t bytes) {
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::read(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) throw Error("transport bench: the peer process closed the connection");
    if (n < 0) throw sys_error("read from the peer process");
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void set_nodelay(int fd) {  // as ZeroMQ does on its TCP connections
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int listen_on_loopback(uint16_t& port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw sys_error("socket");
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw sys_error("listen on 127.0.0.1");
  port = ntohs(a.sin_port);
  return fd;
}

int connect_loopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw sys_error("socket");
  const sockaddr_in a = loopback(port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    throw sys_error("connect to 127.0.0.1:" + std::to_string(port));
  set_nodelay(fd);
  return fd;
}

// Each raw request is {request bytes, reply bytes} then the request bytes; the responder reads
// them and writes the reply bytes back. {0, 0} ends it.
struct RawCommand {
  uint64_t request_bytes;
  uint64_t reply_bytes;
};

int raw_responder(int listen_fd) {
  const int fd = accept(listen_fd, nullptr, nullptr);
  if (fd < 0) throw sys_error("accept");
  set_nodelay(fd);
  std::vector<char> in(kStreamChunk), out;
  while (true) {
    RawCommand c;
    read_all(fd, &c, sizeof c);
    if (c.request_bytes == 0 && c.reply_bytes == 0) break;
    for (uint64_t left = c.request_bytes; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, in.size()));
      read_all(fd, in.data(), n);
      left -= n;
    }
    if (out.size() < c.reply_bytes) out.resize(c.reply_bytes, 1);
    write_all(fd, out.data(), c.reply_bytes);
  }
  close(fd);
  return 0;
}

// Round trips per second of plain-socket ping-pong with these sizes.
double measure_raw_round_trips(int fd, uint64_t request_bytes, uint64_t reply_bytes,
                               double seconds) {
  std::vector<char> out(sizeof(RawCommand) + request_bytes, 2), in(reply_bytes);
  const RawCommand c{request_bytes, reply_bytes};
  std::memcpy(out.data(), &c, sizeof c);
  const auto round_trip = [&] {
    write_all(fd, out.data(), out.size());
    read_all(fd, in.data(), in.size());
  };
  for (const double t_warm = now_seconds(); now_seconds() - t_warm < seconds / 5;) round_trip();
  int64_t n = 0;
  const double t0 = now_seconds();
  double elapsed = 0;
  for (; elapsed < seconds; elapsed = now_seconds() - t0, ++n) round_trip();
  return n / elapsed;
}

// One-way bytes per second of a long stream in kStreamChunk writes.
double measure_raw_stream(int fd, double seconds) {
  std::vector<char> chunk(kStreamChunk, 3);
  // Size the stream from a short probe so that it lasts about `seconds`.
  uint64_t total = 64 * kStreamChunk;
  double rate = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const RawCommand c{total, 1};
    const double t0 = now_seconds();
    write_all(fd, &c, sizeof c);
    for (uint64_t left = total; left > 0; left -= kStreamChunk)
      write_all(fd, chunk.data(), kStreamChunk);
    char ack;
    read_all(fd, &ack, 1);
    rate = total / (now_seconds() - t0);
    total =
        std::max<uint64_t>(16, static_cast<uint64_t>(rate * seconds / kStreamChunk)) * kStreamChunk;
  }
  return rate;
}

// ---- ZeroMQ ---------------------------------------------------------------------------------

DecodeLimits bench_limits(const TransportBenchOptions& o) {
  DecodeLimits l;
  l.max_rows = static_cast<uint32_t>(*std::max_element(o.rows.begin(), o.rows.end()));
  l.hidden = static_cast<uint32_t>(o.hidden);
  l.max_top_k = static_cast<uint32_t>(o.top_k);
  l.num_layers = 1;
  l.num_experts = 64;
  l.max_frame_bytes = uint64_t{l.max_rows} * l.hidden * sizeof(float);
  return l;
}

// The expert shard's side: answers each request with its rows as the output (no compute: this
// measures transport), until bye.
int zmq_responder(int endpoint_pipe, const DecodeLimits& limits, bool zero_copy) {
  zmq::context_t context;
  MessageSocket shard(context, zmq::socket_type::router, limits);
  const std::string endpoint = shard.bind("tcp://127.0.0.1:*") + "\n";
  write_all(endpoint_pipe, endpoint.data(), endpoint.size());
  close(endpoint_pipe);
  while (true) {
    auto in = shard.receive(kReplyTimeout);
    if (!in) throw Error("no request for " + std::to_string(kReplyTimeout.count()) + " ms");
    if (!in->result.ok()) throw Error("request dropped: " + in->result.detail);
    transport::Message& m = *in->result.message;
    if (m.kind() == MessageKind::bye) break;
    if (m.kind() != MessageKind::expert_request) continue;
    auto& batch = std::get<TokenBatch>(m.body);
    auto reply = std::make_shared<ExpertReply>();
    reply->layer = batch.layer;
    reply->hidden_size = batch.hidden_size;
    reply->computed_pairs = static_cast<uint64_t>(batch.size() * batch.top_k);
    reply->out = std::move(batch.rows);
    auto frames = zero_copy ? transport::encode_expert_reply(
                                  m.request_id(), std::shared_ptr<const ExpertReply>(reply))
                            : transport::encode_expert_reply(m.request_id(), *reply);
    while (!shard.send_to(in->routing_id, std::move(frames))) std::this_thread::sleep_for(1ms);
  }
  return 0;
}

std::string read_line(int fd) {
  pollfd p{fd, POLLIN, 0};
  std::string line;
  char c;
  while (true) {
    if (poll(&p, 1, static_cast<int>(kReplyTimeout.count())) <= 0)
      throw Error("transport bench: the responder process did not report its endpoint");
    if (::read(fd, &c, 1) != 1) throw Error("transport bench: the responder process exited early");
    if (c == '\n') return line;
    line.push_back(c);
  }
}

TokenBatch make_bench_batch(int64_t rows, int64_t hidden, int64_t top_k) {
  std::mt19937_64 rng(rows);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  TokenBatch b;
  b.layer = 0;
  b.hidden_size = hidden;
  b.top_k = top_k;
  b.rows.resize(rows * hidden);
  for (float& x : b.rows) x = value(rng);
  for (int64_t r = 0; r < rows; ++r) {
    b.seq_ids.push_back(static_cast<uint64_t>(r));
    b.positions.push_back(static_cast<int32_t>(r));
    for (int64_t k = 0; k < top_k; ++k) {
      b.experts.push_back(static_cast<int32_t>(rng() % 64));
      b.weights.push_back(1.0f / top_k);
    }
  }
  return b;
}

uint64_t message_bytes(const std::vector<zmq::message_t>& frames) {
  uint64_t n = 0;
  for (const auto& f : frames) n += f.size();
  return n;
}

class ZmqSender {
 public:
  ZmqSender(zmq::context_t& context, const std::string& endpoint, const DecodeLimits& limits,
            bool zero_copy)
      : socket_(context, zmq::socket_type::dealer, limits), zero_copy_(zero_copy) {
    socket_.connect(endpoint);
  }

  // Sends the batch, waits for the reply and returns it (checked against the request).
  ExpertReply round_trip(const std::shared_ptr<const TokenBatch>& batch) {
    const uint64_t id = ++next_id_;
    auto frames = zero_copy_ ? transport::encode_expert_request(id, batch)
                             : transport::encode_expert_request(id, *batch);
    if (!socket_.send(std::move(frames))) throw Error("transport bench: send queue full");
    auto in = socket_.receive(kReplyTimeout);
    if (!in) throw Error("transport bench: no reply from the responder process");
    if (!in->result.ok()) throw Error("transport bench: reply dropped: " + in->result.detail);
    const transport::Message& m = *in->result.message;
    if (m.kind() != MessageKind::expert_reply || m.request_id() != id)
      throw Error("transport bench: unexpected " +
                  std::string(transport::message_kind_name(m.kind())) + " for request " +
                  std::to_string(id));
    ExpertReply reply = std::get<ExpertReply>(std::move(in->result.message->body));
    if (reply.size() != batch->size()) throw Error("transport bench: reply has the wrong rows");
    return reply;
  }

  // Round trips per second.
  double measure(const std::shared_ptr<const TokenBatch>& batch, double seconds) {
    if (round_trip(batch).out != batch->rows)
      throw Error("transport bench: the reply does not echo the request");
    for (const double t_warm = now_seconds(); now_seconds() - t_warm < seconds / 5;)
      round_trip(batch);
    int64_t n = 0;
    const double t0 = now_seconds();
    double elapsed = 0;
    for (; elapsed < seconds; elapsed = now_seconds() - t0, ++n) round_trip(batch);
    return n / elapsed;
  }

  MessageSocket& socket() { return socket_; }

 private:
  MessageSocket socket_;
  bool zero_copy_;
  uint64_t next_id_ = 0;
};

}  // namespace

int run_transport_bench(const TransportBenchOptions& opts) {
  if (opts.rows.empty() || opts.hidden < 1 || opts.top_k < 1 || opts.seconds <= 0 ||
      opts.repeats < 1)
    throw Error("transport bench: rows, hidden, top_k, seconds and repeats must be positive");
  for (int64_t r : opts.rows)
    if (r < 1 || r > (int64_t{1} << 20)) throw Error("transport bench: rows must be 1..1048576");
  const DecodeLimits limits = bench_limits(opts);
  if (opts.retain_memory && !transport::retain_freed_buffers())
    throw Error("transport bench: mallopt refused to retain freed memory");

  // Both responder processes are forked before this process starts any thread (ZeroMQ's I/O
  // thread), so each child starts as a clean single-threaded copy.
  uint16_t raw_port = 0;
  const int listen_fd = listen_on_loopback(raw_port);
  ChildProcess raw_child([&] { return raw_responder(listen_fd); });
  close(listen_fd);
  int endpoint_pipe[2];
  if (pipe(endpoint_pipe) != 0) throw sys_error("pipe");
  ChildProcess zmq_child([&] {
    close(endpoint_pipe[0]);
    return zmq_responder(endpoint_pipe[1], limits, opts.zero_copy);
  });
  close(endpoint_pipe[1]);
  const std::string endpoint = read_line(endpoint_pipe[0]);
  close(endpoint_pipe[0]);

  const int raw_fd = connect_loopback(raw_port);
  zmq::context_t context;
  ZmqSender sender(context, endpoint, limits, opts.zero_copy);

  std::fprintf(stderr, "measuring raw TCP streaming...\n");
  double stream = 0;
  for (int64_t r = 0; r < opts.repeats; ++r)
    stream = std::max(stream, measure_raw_stream(raw_fd, opts.seconds));

  struct Row {
    int64_t rows;
    uint64_t request_bytes, reply_bytes;
    double zmq_per_s = 0, raw_per_s = 0;
  };
  std::vector<Row> table;
  for (const int64_t rows : opts.rows) {
    std::fprintf(stderr, "measuring %lld rows...\n", static_cast<long long>(rows));
    auto batch =
        std::make_shared<const TokenBatch>(make_bench_batch(rows, opts.hidden, opts.top_k));
    Row row{rows, message_bytes(transport::encode_expert_request(0, *batch)),
            message_bytes(
                transport::encode_expert_reply(0, ExpertReply{0, opts.hidden, batch->rows, 0}))};
    for (int64_t r = 0; r < opts.repeats; ++r) {  // interleaved, so both see the same noise
      row.zmq_per_s = std::max(row.zmq_per_s, sender.measure(batch, opts.seconds));
      row.raw_per_s = std::max(
          row.raw_per_s,
          measure_raw_round_trips(raw_fd, row.request_bytes, row.reply_bytes, opts.seconds));
    }
    table.push_back(row);
  }

  sender.socket().send(transport::encode_bye({}));
  const RawCommand done{0, 0};
  write_all(raw_fd, &done, sizeof done);
  close(raw_fd);
  const int zmq_rc = zmq_child.wait(), raw_rc = raw_child.wait();
  if (zmq_rc != 0 || raw_rc != 0) throw Error("transport bench: a responder process failed");

  int major, minor, patch;
  zmq_version(&major, &minor, &patch);
  std::printf("## transport: TokenBatch round trips between two processes over TCP loopback\n\n");
  std::printf(
      "machine: %s, %u hardware threads; ZeroMQ %d.%d.%d; hidden %lld f32, top_k %lld; "
      "encode: %s; malloc: %s; best of %lld x %.1f s\n\n",
      cpu_model().c_str(), std::thread::hardware_concurrency(), major, minor, patch,
      static_cast<long long>(opts.hidden), static_cast<long long>(opts.top_k),
      opts.zero_copy ? "zero-copy (frames point into the batch)" : "one copy into frames",
      opts.retain_memory ? "freed memory retained (retain_freed_buffers)" : "glibc defaults",
      static_cast<long long>(opts.repeats), opts.seconds);
  std::printf(
      "raw TCP streaming, one direction, %zu MiB writes: %.0f MB/s (for reference: buffers "
      "this large miss the caches, so ping-pong of smaller ones can beat it)\n\n",
      kStreamChunk >> 20, stream / 1e6);
  std::printf("| batch rows | bytes | msgs/s | MB/s | raw TCP MB/s | ratio |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const Row& r : table) {
    const double per_trip = static_cast<double>(r.request_bytes + r.reply_bytes);
    std::printf("| %lld | %llu | %.0f | %.0f | %.0f | %.0f%% |\n", static_cast<long long>(r.rows),
                static_cast<unsigned long long>(r.request_bytes), r.zmq_per_s,
                r.zmq_per_s * per_trip / 1e6, r.raw_per_s * per_trip / 1e6,
                100.0 * r.zmq_per_s / r.raw_per_s);
  }
  std::printf(
      "\nbytes: the expert_request message (64-byte header + tensor frames); its reply is "
      "rows x hidden f32 + 72 bytes.\nmsgs/s: request/reply round trips per second, one in "
      "flight. MB/s: request + reply bytes per second (10^6 B), both directions counted.\n"
      "raw TCP: plain sockets between two processes, the same bytes per round trip in the same "
      "ping-pong; ratio = ZeroMQ / raw TCP.\n");
  return 0;
}

}  // namespace moeflow::bench
