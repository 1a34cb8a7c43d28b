#include "kernels/cuda/cublas_library.h"

#include <dlfcn.h>

#include <stdexcept>

namespace moeflow::kernels::cuda {

std::vector<std::string> cublas_library_paths() {
  return {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13"};
}

SharedLibrary::SharedLibrary(const std::string& what, const std::vector<std::string>& paths) {
  std::string tried;
  for (const std::string& p : paths) {
    // RTLD_LOCAL: the library's symbols stay out of the global namespace (only looked up here).
    handle_ = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_) {
      path_ = p;
      return;
    }
    const char* why = dlerror();
    tried += (tried.empty() ? "" : "; ") + p + ": " + (why ? why : "unknown error");
  }
  throw std::runtime_error("cannot load " + what + " (tried " +
                           (tried.empty() ? std::string("no paths") : tried) + ")");
}

SharedLibrary::~SharedLibrary() {
  if (handle_) dlclose(handle_);
}

void* SharedLibrary::symbol(const char* name) const {
  dlerror();  // clear a stale error: a symbol may legitimately be at address 0 only in theory
  void* p = dlsym(handle_, name);
  if (!p) {
    const char* why = dlerror();
    throw std::runtime_error(std::string("symbol ") + name + " not found in " + path_ + " (" +
                             (why ? why : "null address") + ")");
  }
  return p;
}

}  // namespace moeflow::kernels::cuda
