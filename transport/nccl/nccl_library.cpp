#include "transport/nccl/nccl_library.h"

#include <memory>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "kernels/cuda/shared_library.h"

namespace moeflow::transport::nccl {

namespace {

// Versions from 2.9 on are major*10000 + minor*100 + patch (nccl.h's NCCL_VERSION).
int major_minor(int code) {
  return code / 100;
}

using kernels::cuda::SharedLibrary;

template <class F>
bool resolve(const SharedLibrary& lib, const char* name, F& out, std::string& missing) {
  out = reinterpret_cast<F>(lib.find(name));
  if (out == nullptr && missing.empty()) missing = name;
  return out != nullptr;
}

// Resolves every function of `api` from `lib`; returns the first missing name, or "".
std::string resolve_all(const SharedLibrary& lib, NcclApi& api) {
  std::string missing;
  resolve(lib, "ncclGetVersion", api.get_version, missing);
  resolve(lib, "ncclGetErrorString", api.get_error_string, missing);
  resolve(lib, "ncclGetLastError", api.get_last_error, missing);
  resolve(lib, "ncclGetUniqueId", api.get_unique_id, missing);
  resolve(lib, "ncclCommInitRankConfig", api.comm_init_rank_config, missing);
  resolve(lib, "ncclCommGetAsyncError", api.comm_get_async_error, missing);
  resolve(lib, "ncclCommFinalize", api.comm_finalize, missing);
  resolve(lib, "ncclCommDestroy", api.comm_destroy, missing);
  resolve(lib, "ncclCommAbort", api.comm_abort, missing);
  resolve(lib, "ncclGroupStart", api.group_start, missing);
  resolve(lib, "ncclGroupEnd", api.group_end, missing);
  resolve(lib, "ncclSend", api.send, missing);
  resolve(lib, "ncclRecv", api.recv, missing);
  return missing;
}

}  // namespace

std::string nccl_version_text(int code) {
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
         std::to_string(code % 100);
}

std::vector<std::string> default_nccl_library_paths() {
  return {"libnccl.so.2", "/usr/local/cuda/lib64/libnccl.so.2"};
}

NcclApi load_nccl_api(const std::vector<std::string>& candidates) {
  std::string tried;
  for (const std::string& path : candidates) {
    if (!tried.empty()) tried += "; ";
    std::string why;
    std::unique_ptr<SharedLibrary> lib = SharedLibrary::try_open(path, why);
    if (!lib) {
      tried += path + ": " + why;
      continue;
    }
    NcclApi api;
    api.path = path;
    const std::string missing = resolve_all(*lib, api);
    if (!missing.empty()) {
      tried += path + ": no symbol " + missing;
      continue;
    }
    if (api.get_version(&api.version) != ncclSuccess) {
      tried += path + ": ncclGetVersion failed";
      continue;
    }
    if (major_minor(api.version) < major_minor(NCCL_VERSION_CODE)) {
      tried += path + ": NCCL " + nccl_version_text(api.version) + ", older than the " +
               nccl_version_text(NCCL_VERSION_CODE) + " headers moeflow was built with";
      continue;
    }
    lib.release();  // never unloaded: NCCL keeps threads
    return api;
  }
  throw Error("cannot load the NCCL library (" + (tried.empty() ? "no paths given" : tried) +
              "); install NCCL " + std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) +
              " or newer, or put its folder on LD_LIBRARY_PATH");
}

const NcclApi& nccl_api() {
  static std::once_flag once;
  static std::optional<NcclApi> api;
  static std::string failure;
  std::call_once(once, [] {
    try {
      api = load_nccl_api(default_nccl_library_paths());
    } catch (const Error& e) {
      failure = e.what();
    }
  });
  if (!api) throw Error(failure);
  return *api;
}

}  // namespace moeflow::transport::nccl
