#pragma once
// Finds cuBLAS at run time (dlopen), so that linking moeflow pulls in neither libcublas nor the
// 540 MB libcublasLt it depends on: a process that never builds a GPU expert stage never loads
// them, and a CPU-only deployment of a CUDA build does not need them installed. Compiled in every
// build (no CUDA headers); kernels/cuda/cublas_api.h resolves the typed functions on top.
#include <string>
#include <vector>

namespace moeflow::kernels::cuda {

// Where cuBLAS is looked for, in order: the loader's search path (LD_LIBRARY_PATH, ld.so.cache),
// then the toolkit's default install.
std::vector<std::string> cublas_library_paths();

// One dlopen'ed shared library, closed on destruction.
class SharedLibrary {
 public:
  // Opens the first of `paths` that loads. Throws std::runtime_error naming `what` and every
  // path tried with the loader's reason when none does.
  SharedLibrary(const std::string& what, const std::vector<std::string>& paths);
  ~SharedLibrary();
  SharedLibrary(const SharedLibrary&) = delete;
  SharedLibrary& operator=(const SharedLibrary&) = delete;

  // The address of `name`; throws std::runtime_error naming the symbol and the library file.
  void* symbol(const char* name) const;

  const std::string& path() const { return path_; }  // the path that loaded

 private:
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace moeflow::kernels::cuda
