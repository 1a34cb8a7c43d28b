// The NCCL communicator over libnccl loaded at run time (built only with CUDA; the stand-in is
// stub/nccl_stub.cpp).
#include "transport/nccl/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/device.h"
#include "transport/nccl/nccl_library.h"

namespace moeflow::transport {

static_assert(sizeof(ncclUniqueId) == kNcclUniqueIdBytes, "NCCL_UNIQUE_ID_BYTES changed");
static_assert(std::is_same_v<GpuStream, cudaStream_t>);

namespace {

using Clock = std::chrono::steady_clock;
// Between two looks at the communicator's state while NCCL works in its own threads.
constexpr auto kPollInterval = std::chrono::microseconds(50);
// Finalising a healthy communicator in the destructor; past it, abort.
constexpr auto kFinalizeTimeout = std::chrono::seconds(10);

std::string cuda_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

std::string rank_context(int rank, int nranks, int device) {
  return "NCCL rank " + std::to_string(rank) + " of " + std::to_string(nranks) +
         " on cuda:" + std::to_string(device);
}

// Makes `device` the calling thread's CUDA device for a scope, then restores the previous one
// (NCCL calls act on the current device).
class DeviceScope {
 public:
  DeviceScope(int device, const std::string& context) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    const cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess)
      throw Error(context + ": cudaSetDevice(" + std::to_string(device) + "): " + cuda_text(e));
  }
  ~DeviceScope() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
};

// One ncclSend or ncclRecv of a group.
struct P2pOp {
  bool send = false;
  void* data = nullptr;
  size_t bytes = 0;
  int peer = 0;
};

}  // namespace

struct NcclCommunicator::State {
  State(const nccl::NcclApi& api, int nranks, int rank, int device, NcclTimeouts timeouts)
      : api(api), nranks(nranks), rank(rank), device(device), timeouts(timeouts) {}

  const nccl::NcclApi& api;
  const int nranks, rank, device;
  const NcclTimeouts timeouts;
  mutable std::mutex mutex;   // guards comm and abort_reason: abort() may come from any thread
  ncclComm_t comm = nullptr;  // null once aborted
  std::string abort_reason;

  std::string context() const { return rank_context(rank, nranks, device); }

  // An NCCL result as text, with NCCL's last error message when it has one.
  std::string nccl_text(ncclResult_t r) const {
    std::string text = api.get_error_string(r);
    const char* last = api.get_last_error(comm);
    if (last != nullptr && *last != '\0') text += std::string(": ") + last;
    return text;
  }

  // Non-blocking calls return ncclInProgress while NCCL finishes them in its own threads.
  void check_locked(ncclResult_t r, const char* call) const {
    if (r != ncclSuccess && r != ncclInProgress)
      throw Error(context() + ": " + call + ": " + nccl_text(r));
  }

  void abort_locked(const std::string& why) {
    if (comm != nullptr) api.comm_abort(comm);
    comm = nullptr;
    if (abort_reason.empty()) abort_reason = why;
  }

  ncclComm_t live_comm_locked(const std::string& what) const {
    if (comm == nullptr)
      throw Error(context() + ": " + what + ": the communicator was aborted (" + abort_reason +
                  ")");
    return comm;
  }

  // Polls until NCCL has finished the communicator's pending work (formed it, or handed a group
  // to the stream). On an NCCL error or past `timeout` it aborts and throws.
  void wait_ready(std::chrono::milliseconds timeout, const std::string& what, const char* hint) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        const ncclComm_t c = live_comm_locked(what);
        ncclResult_t async = ncclSuccess;
        const ncclResult_t r = api.comm_get_async_error(c, &async);
        if (r != ncclSuccess) {
          const std::string text = nccl_text(r);
          abort_locked(what + ": ncclCommGetAsyncError failed");
          throw Error(context() + ": " + what + ": ncclCommGetAsyncError: " + text +
                      " (communicator aborted)");
        }
        if (async == ncclSuccess) return;
        if (async != ncclInProgress) {
          const std::string text = nccl_text(async);
          abort_locked(what + " failed: " + text);
          throw Error(context() + ": " + what + ": " + text + " (communicator aborted)");
        }
        if (Clock::now() >= deadline) {
          abort_locked(what + " timed out");
          throw Error(context() + ": " + what + ": not done within " + ms_text(timeout) + hint +
                      " (communicator aborted)");
        }
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  // The ops as one NCCL group on `stream`; returns once NCCL has enqueued them.
  void run_group(const std::string& what, const std::vector<P2pOp>& ops, cudaStream_t stream) {
    for (const P2pOp& op : ops) {
      if (op.peer < 0 || op.peer >= nranks)
        throw Error(context() + ": " + what + ": peer " + std::to_string(op.peer) +
                    " out of range (nranks " + std::to_string(nranks) + ")");
      if (op.bytes > 0 && op.data == nullptr)
        throw Error(context() + ": " + what + ": null buffer of " + std::to_string(op.bytes) +
                    " bytes for rank " + std::to_string(op.peer));
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      const ncclComm_t c = live_comm_locked(what);
      DeviceScope scope(device, context());
      check_locked(api.group_start(), "ncclGroupStart");
      // Every op is issued and the group always closed, so a failed op leaves no group open.
      ncclResult_t first = ncclSuccess;
      std::string failed;
      for (const P2pOp& op : ops) {
        if (op.bytes == 0) continue;  // both sides skip an empty transfer
        const ncclResult_t r = op.send ? api.send(op.data, op.bytes, ncclUint8, op.peer, c, stream)
                                       : api.recv(op.data, op.bytes, ncclUint8, op.peer, c, stream);
        if (r != ncclSuccess && r != ncclInProgress && first == ncclSuccess) {
          first = r;
          failed = std::string(op.send ? "ncclSend to rank " : "ncclRecv from rank ") +
                   std::to_string(op.peer) + " (" + std::to_string(op.bytes) + " bytes)";
        }
      }
      const ncclResult_t end = api.group_end();
      if (first != ncclSuccess)
        throw Error(context() + ": " + what + ": " + failed + ": " + nccl_text(first));
      check_locked(end, "ncclGroupEnd");
    }
    wait_ready(timeouts.op, what, " (is the peer posting the matching transfer?)");
  }
};

std::string nccl_unavailable_reason() {
  try {
    nccl::nccl_api();
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

std::string nccl_version() {
  return nccl::nccl_version_text(nccl::nccl_api().version);
}

NcclUniqueIdBytes make_nccl_unique_id() {
  const nccl::NcclApi& api = nccl::nccl_api();
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  const ncclResult_t r = api.get_unique_id(&id);
  if (r != ncclSuccess) {
    const char* last = api.get_last_error(nullptr);
    throw Error(std::string("ncclGetUniqueId: ") + api.get_error_string(r) +
                (last != nullptr && *last != '\0' ? std::string(": ") + last : std::string()));
  }
  NcclUniqueIdBytes bytes;
  std::memcpy(bytes.data(), id.internal, bytes.size());
  return bytes;
}

NcclCommunicator::NcclCommunicator(const NcclUniqueIdBytes& unique_id, int nranks, int rank,
                                   int device, NcclTimeouts timeouts) {
  const std::string context = rank_context(rank, nranks, device);
  if (nranks < 1 || nranks > static_cast<int>(kMaxGpuGroupRanks))
    throw Error(context + ": nranks must be 1.." + std::to_string(kMaxGpuGroupRanks));
  if (rank < 0 || rank >= nranks) throw Error(context + ": rank out of range");
  if (device < 0) throw Error(context + ": negative device index");
  const kernels::cuda::DeviceCount devices = kernels::cuda::device_count();
  if (devices.count == 0) throw Error(context + ": no CUDA device (" + devices.error + ")");
  if (device >= devices.count)
    throw Error(context + ": no such CUDA device (this process sees " +
                std::to_string(devices.count) + ")");
  const nccl::NcclApi& api = nccl::nccl_api();

  state_ = std::make_unique<State>(api, nranks, rank, device, timeouts);
  ncclUniqueId id;
  std::memcpy(id.internal, unique_id.data(), sizeof id.internal);
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    DeviceScope scope(device, context);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // so that abort() works while anything hangs
    ncclComm_t comm = nullptr;
    const ncclResult_t r = api.comm_init_rank_config(&comm, nranks, id, rank, &config);
    state_->comm = comm;
    if (r != ncclSuccess && r != ncclInProgress) {
      const std::string text = state_->nccl_text(r);
      state_->abort_locked("ncclCommInitRankConfig failed");
      throw Error(context + ": ncclCommInitRankConfig: " + text);
    }
    if (comm == nullptr) throw Error(context + ": ncclCommInitRankConfig gave no communicator");
  }
  state_->wait_ready(timeouts.init, "forming the communicator",
                     " (do all ranks join with the same unique id, and can they reach the "
                     "process that made it?)");
}

NcclCommunicator::~NcclCommunicator() {
  if (!state_) return;
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.comm == nullptr) return;
  try {
    DeviceScope scope(s.device, s.context());
    ncclResult_t async = ncclSuccess;
    bool clean = s.api.comm_get_async_error(s.comm, &async) == ncclSuccess &&
                 (async == ncclSuccess || async == ncclInProgress);
    if (clean) {
      const ncclResult_t r = s.api.comm_finalize(s.comm);  // flushes pending operations
      clean = r == ncclSuccess || r == ncclInProgress;
    }
    const auto deadline = Clock::now() + kFinalizeTimeout;
    while (clean) {
      if (s.api.comm_get_async_error(s.comm, &async) != ncclSuccess) clean = false;
      if (async == ncclSuccess) break;
      if (async != ncclInProgress || Clock::now() >= deadline) clean = false;
      if (clean) std::this_thread::sleep_for(kPollInterval);
    }
    if (clean)
      s.api.comm_destroy(s.comm);
    else
      s.api.comm_abort(s.comm);
  } catch (...) {  // DeviceScope: the device is gone; abort frees what it can
    s.api.comm_abort(s.comm);
  }
  s.comm = nullptr;
}

int NcclCommunicator::rank() const {
  return state_->rank;
}

int NcclCommunicator::nranks() const {
  return state_->nranks;
}

int NcclCommunicator::device() const {
  return state_->device;
}

void NcclCommunicator::send(GpuBytes data, int peer, GpuStream stream) {
  state_->run_group("send", {{true, const_cast<void*>(data.data), data.bytes, peer}}, stream);
}

void NcclCommunicator::recv(GpuMutableBytes data, int peer, GpuStream stream) {
  state_->run_group("recv", {{false, data.data, data.bytes, peer}}, stream);
}

void NcclCommunicator::send_recv(GpuBytes send_data, int send_peer, GpuMutableBytes recv_data,
                                 int recv_peer, GpuStream stream) {
  state_->run_group("send_recv",
                    {{true, const_cast<void*>(send_data.data), send_data.bytes, send_peer},
                     {false, recv_data.data, recv_data.bytes, recv_peer}},
                    stream);
}

void NcclCommunicator::all_to_all(std::span<const GpuBytes> send,
                                  std::span<const GpuMutableBytes> recv, GpuStream stream) {
  const auto n = static_cast<size_t>(state_->nranks);
  if (send.size() != n || recv.size() != n)
    throw Error(state_->context() + ": all_to_all: " + std::to_string(send.size()) + " sends and " +
                std::to_string(recv.size()) + " receives, expected one per rank (" +
                std::to_string(n) + ")");
  std::vector<P2pOp> ops;
  ops.reserve(2 * n);
  for (size_t r = 0; r < n; ++r) {
    ops.push_back({true, const_cast<void*>(send[r].data), send[r].bytes, static_cast<int>(r)});
    ops.push_back({false, recv[r].data, recv[r].bytes, static_cast<int>(r)});
  }
  state_->run_group("all_to_all", ops, stream);
}

void NcclCommunicator::synchronize(GpuStream stream, std::chrono::milliseconds timeout) {
  State& s = *state_;
  const std::string what = "synchronize";
  const auto deadline = Clock::now() + timeout;
  DeviceScope scope(s.device, s.context());
  for (;;) {
    const cudaError_t e = cudaStreamQuery(stream);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady)
      throw Error(s.context() + ": synchronize: cudaStreamQuery: " + cuda_text(e));
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      const ncclComm_t c = s.live_comm_locked(what);
      ncclResult_t async = ncclSuccess;
      const ncclResult_t r = s.api.comm_get_async_error(c, &async);
      if (r != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
        const std::string text = s.nccl_text(r != ncclSuccess ? r : async);
        s.abort_locked("synchronize: " + text);
        throw Error(s.context() + ": synchronize: " + text + " (communicator aborted)");
      }
      if (Clock::now() >= deadline) {
        s.abort_locked("synchronize timed out");
        throw Error(s.context() + ": synchronize: the stream did not finish within " +
                    ms_text(timeout) +
                    " (a peer that never posted its half of a transfer?); communicator aborted");
      }
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

void NcclCommunicator::abort() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->abort_locked("abort() called");
}

bool NcclCommunicator::healthy() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->comm == nullptr) return false;
  ncclResult_t async = ncclSuccess;
  return state_->api.comm_get_async_error(state_->comm, &async) == ncclSuccess &&
         (async == ncclSuccess || async == ncclInProgress);
}

std::string NcclCommunicator::error() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->comm == nullptr) return "aborted: " + state_->abort_reason;
  ncclResult_t async = ncclSuccess;
  const ncclResult_t r = state_->api.comm_get_async_error(state_->comm, &async);
  if (r != ncclSuccess) return "ncclCommGetAsyncError: " + state_->nccl_text(r);
  if (async != ncclSuccess && async != ncclInProgress) return state_->nccl_text(async);
  return "";
}

}  // namespace moeflow::transport
