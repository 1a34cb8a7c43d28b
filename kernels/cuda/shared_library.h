#pragma once
// The CUDA vendor libraries moeflow uses (cuBLAS here, NCCL in transport/nccl) are found at run
// time with dlopen, so that linking moeflow pulls in neither libcublas (with its 540 MB
// libcublasLt) nor libnccl: a process that never touches a GPU never loads them, and a CPU-only
// deployment of a CUDA build does not need them installed. Compiled in every build (no CUDA
// headers).
#include <memory>
#include <string>
#include <vector>

namespace moeflow::kernels::cuda {

// Where cuBLAS is looked for, in order: the loader's search path (LD_LIBRARY_PATH, ld.so.cache),
// then the toolkit's default install.
std::vector<std::string> cublas_library_paths();

// One dlopen'ed shared library, closed on destruction (release a unique_ptr to one to keep a
// library loaded for the life of the process).
class SharedLibrary {
 public:
  // Opens the first of `paths` that loads. Throws std::runtime_error naming `what` and every
  // path tried with the loader's reason when none does.
  SharedLibrary(const std::string& what, const std::vector<std::string>& paths);
  // Opens `path`; null, with the loader's reason in `why`, when it does not load (for callers
  // that check more than loading before they take a candidate).
  static std::unique_ptr<SharedLibrary> try_open(const std::string& path, std::string& why);
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  // The address of `name`; throws std::runtime_error naming the symbol and the library file.
  void* symbol(const char* name) const;
  // The address of `name`, or null.
  void* find(const char* name) const;

  const std::string& path() const { return path_; }  // the path that loaded

 private:
  SharedLibrary() = default;
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace moeflow::kernels::cuda
