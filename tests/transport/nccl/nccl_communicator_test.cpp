// The NCCL communicator. Everywhere: the unique id (no GPU needed), the refusals of bad
// arguments, of a missing device and of a build without NCCL. With a GPU: one rank sending to
// itself (fresh random bytes, poisoned receive buffers, 1 byte to 64 MiB, ragged sizes), abort,
// and a rank whose peer never joins timing out. With two GPUs: two ranks in two threads
// exchanging ragged all-to-all blocks, and abort ending a transfer whose peer never posts.
#include "transport/nccl/nccl_communicator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "transport/wire_format.h"

#if MOEFLOW_HAVE_NCCL
#include <cuda_runtime_api.h>

#include <exception>
#include <latch>
#include <memory>
#include <thread>

#include "tests/kernels/cuda_test_util.h"
#endif

namespace moeflow::transport {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

NcclUniqueIdBytes some_id() {
  NcclUniqueIdBytes id{};
  id[0] = 1;
  return id;
}

#define SKIP_WITHOUT_NCCL()                                                \
  do {                                                                     \
    if (const std::string why_ = nccl_unavailable_reason(); !why_.empty()) \
      GTEST_SKIP() << "NCCL unavailable (" << why_ << ")";                 \
  } while (0)

TEST(NcclCommunicator, UnavailableReasonMatchesTheBuild) {
  const std::string why = nccl_unavailable_reason();
#if MOEFLOW_HAVE_NCCL
  // Built with nccl.h: usable when the library is installed, else the paths tried are named.
  if (!why.empty()) {
    EXPECT_NE(why.find("libnccl.so.2"), std::string::npos) << why;
  }
#else
  EXPECT_NE(why.find("built without"), std::string::npos) << why;
  EXPECT_NE(error_of([] { make_nccl_unique_id(); }).find("NCCL is unavailable"), std::string::npos);
  EXPECT_NE(error_of([] { NcclCommunicator c(some_id(), 1, 0, 0); }).find("built without"),
            std::string::npos);
#endif
}

TEST(NcclCommunicator, UniqueIdNeedsNoGpuAndTravelsInAGpuGroup) {
  SKIP_WITHOUT_NCCL();
  const NcclUniqueIdBytes a = make_nccl_unique_id();
  const NcclUniqueIdBytes b = make_nccl_unique_id();
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::any_of(a.begin(), a.end(), [](uint8_t x) { return x != 0; }));
  EXPECT_EQ(nccl_version().rfind("2.", 0), 0u) << nccl_version();

  const GpuGroup sent{1, a, {{"router", 0}, {"experts", 1}}};
  const DecodeResult r = decode(encode_gpu_group(5, sent), DecodeLimits{});
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(std::get<GpuGroup>(r.message->body).unique_id, a);
}

TEST(NcclCommunicator, RefusesBadArgumentsAndMissingDevicesWithContext) {
#if MOEFLOW_HAVE_NCCL
  EXPECT_NE(error_of([] { NcclCommunicator c(some_id(), 0, 0, 0); }).find("nranks must be 1.."),
            std::string::npos);
  EXPECT_NE(error_of([] {
              NcclCommunicator c(some_id(), 2, 2, 0);
            }).find("NCCL rank 2 of 2 on cuda:0: rank out of range"),
            std::string::npos);
  EXPECT_NE(error_of([] { NcclCommunicator c(some_id(), 1, 0, -1); }).find("negative device"),
            std::string::npos);
  // A device this process does not have: none at all here, or one past the last on a GPU box.
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  const std::string e = error_of([&] { NcclCommunicator c(some_id(), 1, 0, devices.count); });
  EXPECT_NE(e.find("NCCL rank 0 of 1 on cuda:" + std::to_string(devices.count)), std::string::npos)
      << e;
  EXPECT_NE(e.find(devices.count == 0 ? "no CUDA device (" : "no such CUDA device"),
            std::string::npos)
      << e;
#else
  EXPECT_NE(error_of([] { NcclCommunicator c(some_id(), 2, 0, 0); }).find("NCCL is unavailable"),
            std::string::npos);
#endif
}

#if MOEFLOW_HAVE_NCCL

using test_support::cuda_ok;

#define REQUIRE_GPU_AND_NCCL()   \
  MOEFLOW_REQUIRE_CUDA_DEVICE(); \
  SKIP_WITHOUT_NCCL()

// A stream on the current device, destroyed on scope exit.
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { cuda_ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
  ~Stream() { cudaStreamDestroy(s); }
};

std::vector<uint8_t> random_bytes(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

constexpr size_t kGuardBytes = 64;  // past each receive buffer, still poisoned afterwards

// The received bytes equal `expected` and the guard bytes after them are untouched (0xff).
void expect_received(const test_support::DeviceArray<uint8_t>& buffer,
                     const std::vector<uint8_t>& expected, const std::string& what) {
  const std::vector<uint8_t> got = buffer.download();
  ASSERT_EQ(got.size(), expected.size() + kGuardBytes) << what;
  const auto mismatch = std::mismatch(expected.begin(), expected.end(), got.begin());
  EXPECT_TRUE(mismatch.first == expected.end())
      << what << ": first wrong byte at " << (mismatch.first - expected.begin()) << " of "
      << expected.size();
  EXPECT_TRUE(std::all_of(got.begin() + static_cast<std::ptrdiff_t>(expected.size()), got.end(),
                          [](uint8_t b) { return b == 0xff; }))
      << what << ": wrote past the end";
}

TEST(NcclCommunicatorGpu, OneRankSendsToItself) {
  REQUIRE_GPU_AND_NCCL();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  cuda_ok(cudaSetDevice(0), "cudaSetDevice");
  NcclCommunicator comm(make_nccl_unique_id(), 1, 0, 0);
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.nranks(), 1);
  EXPECT_EQ(comm.device(), 0);
  EXPECT_TRUE(comm.healthy()) << comm.error();
  Stream stream;
  for (size_t bytes : {size_t{1}, size_t{4097}, (size_t{1} << 20) + 3, size_t{64} << 20}) {
    const std::vector<uint8_t> host = random_bytes(bytes, rng);
    test_support::DeviceArray<uint8_t> src(host);
    test_support::DeviceArray<uint8_t> dst(bytes + kGuardBytes);
    dst.poison();
    comm.send_recv({src.get(), bytes}, 0, {dst.get(), bytes}, 0, stream.s);
    comm.synchronize(stream.s, std::chrono::seconds(30));
    expect_received(dst, host, "send_recv of " + std::to_string(bytes) + " bytes");
  }
  EXPECT_TRUE(comm.healthy()) << comm.error();
  EXPECT_EQ(comm.error(), "");
}

TEST(NcclCommunicatorGpu, OneRankAllToAllAndEmptyTransfers) {
  REQUIRE_GPU_AND_NCCL();
  std::mt19937_64 rng(std::random_device{}());
  NcclCommunicator comm(make_nccl_unique_id(), 1, 0, 0);
  Stream stream;
  const size_t bytes = 333333;
  const std::vector<uint8_t> host = random_bytes(bytes, rng);
  test_support::DeviceArray<uint8_t> src(host);
  test_support::DeviceArray<uint8_t> dst(bytes + kGuardBytes);
  dst.poison();
  const GpuBytes send[] = {{src.get(), bytes}};
  const GpuMutableBytes recv[] = {{dst.get(), bytes}};
  comm.all_to_all(send, recv, stream.s);
  comm.synchronize(stream.s, std::chrono::seconds(30));
  expect_received(dst, host, "all_to_all");

  // Empty entries move nothing (the poison stays).
  dst.poison();
  const GpuBytes none[] = {{src.get(), 0}};
  const GpuMutableBytes into[] = {{dst.get(), 0}};
  comm.all_to_all(none, into, stream.s);
  comm.synchronize(stream.s, std::chrono::seconds(30));
  expect_received(dst, {}, "empty all_to_all");
  EXPECT_TRUE(comm.healthy()) << comm.error();
}

TEST(NcclCommunicatorGpu, RefusesPeersAndShapesOutOfRange) {
  REQUIRE_GPU_AND_NCCL();
  NcclCommunicator comm(make_nccl_unique_id(), 1, 0, 0);
  Stream stream;
  test_support::DeviceArray<uint8_t> buf(16);
  EXPECT_NE(error_of([&] {
              comm.send({buf.get(), 16}, 1, stream.s);
            }).find("NCCL rank 0 of 1 on cuda:0: send: peer 1 out of range (nranks 1)"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              comm.recv({nullptr, 16}, 0, stream.s);
            }).find("null buffer"),
            std::string::npos);
  const GpuBytes two[] = {{buf.get(), 1}, {buf.get(), 1}};
  const GpuMutableBytes one[] = {{buf.get(), 1}};
  EXPECT_NE(error_of([&] {
              comm.all_to_all(two, one, stream.s);
            }).find("2 sends and 1 receives, expected one per rank (1)"),
            std::string::npos);
  EXPECT_TRUE(comm.healthy()) << comm.error();  // refused before reaching NCCL
}

TEST(NcclCommunicatorGpu, AbortMakesItUnhealthyAndLaterCallsThrow) {
  REQUIRE_GPU_AND_NCCL();
  NcclCommunicator comm(make_nccl_unique_id(), 1, 0, 0);
  Stream stream;
  test_support::DeviceArray<uint8_t> buf(16);
  comm.abort();
  EXPECT_FALSE(comm.healthy());
  EXPECT_NE(comm.error().find("abort() called"), std::string::npos) << comm.error();
  EXPECT_NE(error_of([&] {
              comm.send_recv({buf.get(), 8}, 0, {buf.get() + 8, 8}, 0, stream.s);
            }).find("the communicator was aborted"),
            std::string::npos);
  comm.abort();  // idempotent
}

TEST(NcclCommunicatorGpu, RankWhosePeerNeverJoinsTimesOutAndAborts) {
  REQUIRE_GPU_AND_NCCL();
  NcclTimeouts timeouts;
  timeouts.init = std::chrono::milliseconds(2000);
  const auto started = std::chrono::steady_clock::now();
  const std::string e =
      error_of([&] { NcclCommunicator c(make_nccl_unique_id(), 2, 0, 0, timeouts); });
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_NE(e.find("NCCL rank 0 of 2 on cuda:0: forming the communicator: not done within 2000 ms"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("(communicator aborted)"), std::string::npos) << e;
  EXPECT_LT(took, std::chrono::seconds(20));
}

// ---- two GPUs -------------------------------------------------------------------------------

#define REQUIRE_TWO_GPUS_AND_NCCL()                                                             \
  do {                                                                                          \
    const int count_ = ::moeflow::kernels::cuda::device_count().count;                          \
    if (count_ < 2) GTEST_SKIP() << "needs 2 CUDA devices (this machine has " << count_ << ")"; \
    SKIP_WITHOUT_NCCL();                                                                        \
  } while (0)

// Runs rank 0 and rank 1 in two threads (each joins its communicator, which blocks until both
// have) and rethrows the first failure.
void run_two_ranks(const std::function<void(int rank)>& body) {
  std::exception_ptr failed[2];
  std::thread second([&] {
    try {
      body(1);
    } catch (...) {
      failed[1] = std::current_exception();
    }
  });
  try {
    body(0);
  } catch (...) {
    failed[0] = std::current_exception();
  }
  second.join();
  for (auto& f : failed)
    if (f) std::rethrow_exception(f);
}

// The bytes rank `from` sends to rank `to`: ragged sizes, content from the shared seed.
std::vector<uint8_t> block(int from, int to, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + static_cast<uint64_t>(from * 2 + to));
  const size_t bytes = 1000 * static_cast<size_t>(from + 1) + 17 * static_cast<size_t>(to) + 1 +
                       (from == 1 && to == 0 ? (size_t{3} << 20) : 0);
  return random_bytes(bytes, rng);
}

TEST(NcclCommunicatorGpu2, TwoRanksExchangeRaggedAllToAllAndPointToPoint) {
  REQUIRE_TWO_GPUS_AND_NCCL();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const NcclUniqueIdBytes id = make_nccl_unique_id();
  ASSERT_NO_THROW(run_two_ranks([&](int rank) {
    cuda_ok(cudaSetDevice(rank), "cudaSetDevice");
    NcclCommunicator comm(id, 2, rank, rank);
    Stream stream;
    std::vector<std::unique_ptr<test_support::DeviceArray<uint8_t>>> out, in;
    std::vector<GpuBytes> send;
    std::vector<GpuMutableBytes> recv;
    for (int peer = 0; peer < 2; ++peer) {
      const auto mine = block(rank, peer, seed);
      const auto theirs = block(peer, rank, seed);
      out.push_back(std::make_unique<test_support::DeviceArray<uint8_t>>(mine));
      in.push_back(
          std::make_unique<test_support::DeviceArray<uint8_t>>(theirs.size() + kGuardBytes));
      in.back()->poison();
      send.push_back({out.back()->get(), mine.size()});
      recv.push_back({in.back()->get(), theirs.size()});
    }
    comm.all_to_all(send, recv, stream.s);
    comm.synchronize(stream.s, std::chrono::seconds(30));
    for (int peer = 0; peer < 2; ++peer)
      expect_received(*in[peer], block(peer, rank, seed),
                      "rank " + std::to_string(rank) + " from rank " + std::to_string(peer));

    // Rank 0 to rank 1, point to point.
    const size_t bytes = (size_t{5} << 20) + 7;
    std::mt19937_64 rng(seed + 99);
    const std::vector<uint8_t> payload = random_bytes(bytes, rng);
    if (rank == 0) {
      test_support::DeviceArray<uint8_t> src(payload);
      comm.send({src.get(), bytes}, 1, stream.s);
      comm.synchronize(stream.s, std::chrono::seconds(30));
    } else {
      test_support::DeviceArray<uint8_t> dst(bytes + kGuardBytes);
      dst.poison();
      comm.recv({dst.get(), bytes}, 0, stream.s);
      comm.synchronize(stream.s, std::chrono::seconds(30));
      expect_received(dst, payload, "send 0 -> 1");
    }
    EXPECT_TRUE(comm.healthy()) << comm.error();
  }));
}

TEST(NcclCommunicatorGpu2, AbortEndsATransferWhosePeerNeverPosts) {
  REQUIRE_TWO_GPUS_AND_NCCL();
  const NcclUniqueIdBytes id = make_nccl_unique_id();
  NcclTimeouts timeouts;
  timeouts.op = std::chrono::milliseconds(2000);
  std::string failure;
  bool healthy_after = true;
  std::latch rank0_done(1);
  ASSERT_NO_THROW(run_two_ranks([&](int rank) {
    cuda_ok(cudaSetDevice(rank), "cudaSetDevice");
    NcclCommunicator comm(id, 2, rank, rank, timeouts);
    if (rank == 1) {  // joins, then never sends while rank 0 waits
      rank0_done.wait();
      return;
    }
    struct CountDown {
      std::latch& l;
      ~CountDown() { l.count_down(); }
    } count_down{rank0_done};
    Stream stream;
    test_support::DeviceArray<uint8_t> dst(1 << 20);
    const auto started = std::chrono::steady_clock::now();
    failure = error_of([&] {
      comm.recv({dst.get(), 1 << 20}, 1, stream.s);  // may already time out here
      comm.synchronize(stream.s, std::chrono::milliseconds(2000));
    });
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
    healthy_after = comm.healthy();
  }));
  EXPECT_NE(failure.find("communicator aborted"), std::string::npos) << failure;
  EXPECT_FALSE(healthy_after);
}

#endif  // MOEFLOW_HAVE_NCCL

}  // namespace
}  // namespace moeflow::transport
