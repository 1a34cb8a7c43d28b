#include "kernels/cuda/shared_library.h"

#include <dlfcn.h>

#include <stdexcept>

namespace moeflow::kernels::cuda {

std::vector<std::string> cublas_library_paths() {
  return {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13"};
}

std::unique_ptr<SharedLibrary> SharedLibrary::try_open(const std::string& path, std::string& why) {
  // RTLD_LOCAL: the library's symbols stay out of the global namespace (only looked up here).
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* reason = dlerror();
    why = reason ? reason : "unknown error";
    return nullptr;
  }
  std::unique_ptr<SharedLibrary> lib(new SharedLibrary());
  lib->handle_ = handle;
  lib->path_ = path;
  return lib;
}

SharedLibrary::SharedLibrary(const std::string& what, const std::vector<std::string>& paths) {
  std::string tried;
  for (const std::string& p : paths) {
    std::string why;
    if (auto lib = try_open(p, why)) {
      std::swap(handle_, lib->handle_);
      path_ = p;
      return;
    }
    tried += (tried.empty() ? "" : "; ") + p + ": " + why;
  }
  throw std::runtime_error("cannot load " + what + " (tried " +
                           (tried.empty() ? std::string("no paths") : tried) + ")");
}

SharedLibrary::~SharedLibrary() {
  if (handle_) dlclose(handle_);
}

void* SharedLibrary::find(const char* name) const {
  return dlsym(handle_, name);
}

void* SharedLibrary::symbol(const char* name) const {
  dlerror();  // clear a stale error
  void* p = dlsym(handle_, name);
  if (!p) {
    const char* why = dlerror();
    throw std::runtime_error(std::string("symbol ") + name + " not found in " + path_ + " (" +
                             (why ? why : "null address") + ")");
  }
  return p;
}

}  // namespace moeflow::kernels::cuda
