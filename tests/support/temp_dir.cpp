#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace moeflow::test_support {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "_" + info->name() : "test";
  for (char& c : name)
    if (c == '/') c = '_';
  path_ = fs::temp_directory_path() / ("moeflow_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void copy_folder(const fs::path& from, const fs::path& dest) {
  fs::create_directories(dest);
  fs::copy(from, dest, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

void edit_config(const fs::path& dir, const std::string& key, const std::string& json_value) {
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  cfg[key] = nlohmann::json::parse(json_value);
  std::ofstream(dir / "config.json") << cfg.dump(2);
}

}  // namespace moeflow::test_support
