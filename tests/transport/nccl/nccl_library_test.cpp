// Loading libnccl at run time: a missing library names every path tried, a library without the
// functions is refused, the installed one loads. Needs no GPU; only in builds with nccl.h.
#if MOEFLOW_HAVE_NCCL
#include "transport/nccl/nccl_library.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "transport/nccl/nccl_communicator.h"

namespace moeflow::transport::nccl {
namespace {

std::string load_error(const std::vector<std::string>& paths) {
  try {
    load_nccl_api(paths);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(NcclLibrary, MissingLibraryNamesEveryPathTried) {
  const std::string e = load_error({"/nonexistent/libnccl.so.2", "libnccl-moeflow-test.so.9"});
  EXPECT_NE(e.find("cannot load the NCCL library"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/libnccl.so.2: "), std::string::npos) << e;
  EXPECT_NE(e.find("libnccl-moeflow-test.so.9: "), std::string::npos) << e;
  EXPECT_NE(e.find("LD_LIBRARY_PATH"), std::string::npos) << e;
  EXPECT_NE(load_error({}).find("no paths given"), std::string::npos);
}

TEST(NcclLibrary, LibraryWithoutTheFunctionsIsRefused) {
  const std::string e = load_error({"libm.so.6"});
  EXPECT_NE(e.find("libm.so.6: no symbol ncclGetVersion"), std::string::npos) << e;
}

TEST(NcclLibrary, DefaultPathsAreTheLoaderThenTheToolkit) {
  const auto paths = default_nccl_library_paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], "libnccl.so.2");
  EXPECT_EQ(paths[1], "/usr/local/cuda/lib64/libnccl.so.2");
}

TEST(NcclLibrary, InstalledLibraryLoadsWithEveryFunction) {
  if (const std::string why = nccl_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const NcclApi& api = nccl_api();
  EXPECT_FALSE(api.path.empty());
  EXPECT_GE(api.version / 100, NCCL_VERSION_CODE / 100) << nccl_version_text(api.version);
  EXPECT_NE(api.send, nullptr);
  EXPECT_NE(api.comm_abort, nullptr);
  EXPECT_EQ(&api, &nccl_api());  // loaded once
  EXPECT_EQ(nccl_version_text(22809), "2.28.9");
}

}  // namespace
}  // namespace moeflow::transport::nccl
#endif
