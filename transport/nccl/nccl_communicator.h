#pragma once
// One rank of the NCCL communicator that the GPU shards of a deployment share (docs/nccl.md).
// The unique id travels over the ZeroMQ control channel (wire kind gpu_group); token batches
// between GPU shards then move GPU to GPU with send/recv or all-to-all, enqueued on a CUDA
// stream. libnccl is loaded at run time (nccl_library.h), so a process that never forms a
// communicator does not load it.
//
// This header needs no CUDA headers and builds everywhere; built without CUDA every entry point
// throws moeflow::Error "built without CUDA" (and nccl_unavailable_reason() says so).
//
// The communicator is non-blocking (NCCL's config blocking = 0): no call waits inside NCCL, so
// each wait is a poll with a timeout, and abort() from another thread ends whatever hangs (a
// peer that died mid-transfer, say). Apart from abort(), healthy() and error(), the calls of one
// communicator must come from one thread at a time, as NCCL requires.
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "transport/gpu_group.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*: named here so no CUDA header is needed

namespace moeflow::transport {

using GpuStream = CUstream_st*;  // a cudaStream_t; nullptr is the legacy default stream

// Empty when this process can use NCCL (built with CUDA, the library loads and is recent
// enough), else why not, naming the library paths tried. Needs no GPU.
std::string nccl_unavailable_reason();

// "2.28.9", the version of the library loaded; throws moeflow::Error when none loads.
std::string nccl_version();

// A fresh unique id for a new communicator (ncclGetUniqueId). Needs the library but no GPU: it
// starts NCCL's bootstrap root in this process (a listening socket and a thread), which every
// member reaches over the network while the communicator forms, so the process that makes the id
// must outlive the forming. Throws moeflow::Error without CUDA or the library.
NcclUniqueIdBytes make_nccl_unique_id();

// Device memory to send from or receive into, with its size in bytes.
struct GpuBytes {
  const void* data = nullptr;
  size_t bytes = 0;
};
struct GpuMutableBytes {
  void* data = nullptr;
  size_t bytes = 0;
};

struct NcclTimeouts {
  std::chrono::milliseconds init{60000};  // every rank joined
  std::chrono::milliseconds op{30000};    // one group of send/recv handed to the GPU
};

class NcclCommunicator {
 public:
  // Joins the communicator of `unique_id` as `rank` of `nranks` on CUDA device `device`. Blocks
  // until all ranks have joined; past timeouts.init it aborts and throws moeflow::Error (as it
  // does for a missing device or library, or bad arguments), naming rank, nranks and device.
  // The calling thread's current CUDA device is left as it was.
  NcclCommunicator(const NcclUniqueIdBytes& unique_id, int nranks, int rank, int device,
                   NcclTimeouts timeouts = {});
  // Finalises a healthy communicator (its pending operations first), aborts any other.
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const;
  int nranks() const;
  int device() const;

  // Point to point, bytes as they are, enqueued on `stream` (a stream of this device). A send on
  // one rank pairs with a recv of the same size on the peer, in the same order. Rank r may send
  // to itself only together with the matching recv, in one group: use send_recv or all_to_all.
  void send(GpuBytes data, int peer, GpuStream stream);
  void recv(GpuMutableBytes data, int peer, GpuStream stream);
  // One send and one receive in one group: a ring step, or a copy to this rank itself.
  void send_recv(GpuBytes send_data, int send_peer, GpuMutableBytes recv_data, int recv_peer,
                 GpuStream stream);
  // All-to-all of variable sizes as one group of sends and receives: send[r] goes to rank r,
  // recv[r] comes from rank r (both nranks() long). Every rank must agree with its peers on the
  // sizes: send[r].bytes on rank q equals recv[q].bytes on rank r (exchange the counts first).
  // Empty entries move nothing.
  void all_to_all(std::span<const GpuBytes> send, std::span<const GpuMutableBytes> recv,
                  GpuStream stream);

  // Waits until `stream` has finished its work, polling the communicator's health; on an NCCL
  // error or after `timeout` it aborts the communicator and throws moeflow::Error.
  void synchronize(GpuStream stream, std::chrono::milliseconds timeout);

  // Ends the communicator from any thread: operations in flight fail (their kernels return), and
  // every later call throws. Idempotent.
  void abort();
  // No asynchronous NCCL error so far and not aborted. Any thread.
  bool healthy() const;
  // Why not healthy ("" when healthy). Any thread.
  std::string error() const;

  struct State;  // the CUDA-side state (transport/nccl/nccl_communicator.cpp)

 private:
  std::unique_ptr<State> state_;
};

}  // namespace moeflow::transport
