// The run-time loader of the CUDA vendor libraries (kernels/cuda/shared_library.h): a missing
// library is an error naming it and every path tried; a missing symbol names the symbol and the
// file. Runs in every build, GPU or not (it loads libc, never cuBLAS).
#include "kernels/cuda/shared_library.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace moeflow::kernels::cuda {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(SharedLibrary, MissingLibraryNamesItAndEveryPathTried) {
  try {
    SharedLibrary lib("cuBLAS (libcublas.so.13)",
                      {"/nonexistent/libcublas.so.13", "/also/missing/libcublas.so.13"});
    FAIL() << "loaded " << lib.path();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "cannot load cuBLAS (libcublas.so.13)")) << what;
    EXPECT_TRUE(contains(what, "/nonexistent/libcublas.so.13")) << what;
    EXPECT_TRUE(contains(what, "/also/missing/libcublas.so.13")) << what;
  }
}

TEST(SharedLibrary, LooksOnTheSearchPathThenInTheToolkit) {
  const std::vector<std::string> paths = cublas_library_paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], "libcublas.so.13");
  EXPECT_EQ(paths[1], "/usr/local/cuda/lib64/libcublas.so.13");
}

TEST(SharedLibrary, TakesTheFirstPathThatLoadsAndNamesMissingSymbols) {
  SharedLibrary libc("libc", {"/nonexistent/libc.so.6", "libc.so.6"});
  EXPECT_EQ(libc.path(), "libc.so.6");
  EXPECT_NE(libc.symbol("strlen"), nullptr);
  try {
    libc.symbol("moeflow_no_such_symbol");
    FAIL() << "found a symbol that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "moeflow_no_such_symbol")) << e.what();
    EXPECT_TRUE(contains(e.what(), "libc.so.6")) << e.what();
  }
}

}  // namespace
}  // namespace moeflow::kernels::cuda
