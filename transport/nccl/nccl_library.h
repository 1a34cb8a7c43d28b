#pragma once
// libnccl, loaded at run time with dlopen: only processes that form a communicator map the
// library (200+ MB), and a CPU-only deployment needs none. Only the functions moeflow calls are
// resolved. Built only with CUDA (it needs nccl.h for the types).
#include <nccl.h>

#include <string>
#include <vector>

namespace moeflow::transport::nccl {

struct NcclApi {
  std::string path;  // the candidate that loaded
  int version = 0;   // NCCL_VERSION_CODE of the loaded library (22809 for 2.28.9)

  decltype(&::ncclGetVersion) get_version = nullptr;
  decltype(&::ncclGetErrorString) get_error_string = nullptr;
  decltype(&::ncclGetLastError) get_last_error = nullptr;
  decltype(&::ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&::ncclCommInitRankConfig) comm_init_rank_config = nullptr;
  decltype(&::ncclCommGetAsyncError) comm_get_async_error = nullptr;
  decltype(&::ncclCommFinalize) comm_finalize = nullptr;
  decltype(&::ncclCommDestroy) comm_destroy = nullptr;
  decltype(&::ncclCommAbort) comm_abort = nullptr;
  decltype(&::ncclGroupStart) group_start = nullptr;
  decltype(&::ncclGroupEnd) group_end = nullptr;
  decltype(&::ncclSend) send = nullptr;
  decltype(&::ncclRecv) recv = nullptr;
};

// Where nccl_api() looks, in order: the dynamic loader's search (LD_LIBRARY_PATH, ldconfig),
// then the CUDA toolkit's folder.
std::vector<std::string> default_nccl_library_paths();

// Loads the first candidate that dlopen accepts, resolves every function above and checks the
// version (at least the major.minor of the nccl.h moeflow was built with, whose config struct it
// passes). Throws moeflow::Error naming each candidate tried and why it failed (dlerror, a
// missing function, an older version). A library that loaded is never unloaded (NCCL keeps
// threads).
NcclApi load_nccl_api(const std::vector<std::string>& candidates);

// load_nccl_api(default_nccl_library_paths()), once per process; later calls return the same
// library or throw the same error.
const NcclApi& nccl_api();

// "2.28.9" of a NCCL_VERSION_CODE.
std::string nccl_version_text(int code);

}  // namespace moeflow::transport::nccl
