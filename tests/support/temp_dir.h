#pragma once
// A scratch folder for one test, removed when the test ends.
#include <filesystem>
#include <string>

namespace moeflow::test_support {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Copies a fixture folder (e.g. golden_dir("mixtral")) into `dest`.
void copy_folder(const std::filesystem::path& from, const std::filesystem::path& dest);

// Rewrites one top-level key of `<dir>/config.json` with a JSON value given as text.
void edit_config(const std::filesystem::path& dir, const std::string& key,
                 const std::string& json_value);

}  // namespace moeflow::test_support
