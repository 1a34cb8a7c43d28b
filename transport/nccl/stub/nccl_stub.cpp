// The NCCL communicator of a build without CUDA (or without nccl.h): every entry point says why
// NCCL is unavailable, so no caller needs an #if.
#include "core/error.h"
#include "transport/nccl/nccl_communicator.h"

#ifndef MOEFLOW_NCCL_STUB_REASON
#define MOEFLOW_NCCL_STUB_REASON "moeflow was built without CUDA (no nvcc found)"
#endif

namespace moeflow::transport {

namespace {

[[noreturn]] void unavailable(const char* what) {
  throw Error(std::string(what) + ": NCCL is unavailable: " + MOEFLOW_NCCL_STUB_REASON);
}

}  // namespace

struct NcclCommunicator::State {};

std::string nccl_unavailable_reason() {
  return MOEFLOW_NCCL_STUB_REASON;
}

std::string nccl_version() {
  unavailable("nccl_version");
}

NcclUniqueIdBytes make_nccl_unique_id() {
  unavailable("make_nccl_unique_id");
}

NcclCommunicator::NcclCommunicator(const NcclUniqueIdBytes&, int, int, int, NcclTimeouts) {
  unavailable("NcclCommunicator");
}

NcclCommunicator::~NcclCommunicator() = default;

// Unreachable: no communicator can be constructed.
int NcclCommunicator::rank() const {
  unavailable("rank");
}
int NcclCommunicator::nranks() const {
  unavailable("nranks");
}
int NcclCommunicator::device() const {
  unavailable("device");
}
void NcclCommunicator::send(GpuBytes, int, GpuStream) {
  unavailable("send");
}
void NcclCommunicator::recv(GpuMutableBytes, int, GpuStream) {
  unavailable("recv");
}
void NcclCommunicator::send_recv(GpuBytes, int, GpuMutableBytes, int, GpuStream) {
  unavailable("send_recv");
}
void NcclCommunicator::all_to_all(std::span<const GpuBytes>, std::span<const GpuMutableBytes>,
                                  GpuStream) {
  unavailable("all_to_all");
}
void NcclCommunicator::synchronize(GpuStream, std::chrono::milliseconds) {
  unavailable("synchronize");
}
void NcclCommunicator::abort() {}
bool NcclCommunicator::healthy() const {
  return false;
}
std::string NcclCommunicator::error() const {
  return MOEFLOW_NCCL_STUB_REASON;
}

}  // namespace moeflow::transport
