#include "model/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TestTensor {
  std::string name;
  std::vector<int64_t> shape;  // F32; element i holds the value `fill + i`
  float fill = 0;
};

class CheckpointTest : public testing::Test {
 protected:
  static void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    ASSERT_TRUE(out.good()) << path;
  }

  // Writes a valid F32 safetensors file holding `tensors`.
  static void write_safetensors(const fs::path& path, const std::vector<TestTensor>& tensors) {
    json header = json::object();
    std::vector<float> data;
    for (const auto& t : tensors) {
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      const size_t begin = data.size() * 4;
      for (int64_t i = 0; i < n; ++i) data.push_back(t.fill + static_cast<float>(i));
      header[t.name] = {
          {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {begin, data.size() * 4}}};
    }
    const std::string text = header.dump();
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(uint64_t{text.size()} >> (8 * i));
    bytes += text;
    bytes.append(reinterpret_cast<const char*>(data.data()), data.size() * 4);
    write_text(path, bytes);
  }

  void write_index(const json& weight_map) {
    write_text(dir_ / "model.safetensors.index.json",
               json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
  }

  // The two-shard layout most tests start from.
  void write_sharded() {
    write_safetensors(dir_ / "model-00001-of-00002.safetensors",
                      {{"embed", {4, 2}, 0}, {"layers.0.w", {2, 3}, 100}});
    write_safetensors(dir_ / "model-00002-of-00002.safetensors",
                      {{"layers.1.w", {3}, 200}, {"norm", {2}, 300}});
    write_index({{"embed", "model-00001-of-00002.safetensors"},
                 {"layers.0.w", "model-00001-of-00002.safetensors"},
                 {"layers.1.w", "model-00002-of-00002.safetensors"},
                 {"norm", "model-00002-of-00002.safetensors"}});
  }

  std::string open_error() const {
    try {
      Checkpoint::open(dir_);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a moeflow::Error";
    return "";
  }

  static float first_value(const TensorInfo& t) {
    float v = 0;
    std::memcpy(&v, t.data, 4);
    return v;
  }

  test_support::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

void expect_contains(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& part : parts) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "message \"" << message << "\" lacks \"" << part << "\"";
  }
}

TEST_F(CheckpointTest, OpensASingleFile) {
  write_safetensors(dir_ / "model.safetensors", {{"a", {2, 3}, 1}, {"b", {5}, 10}});
  const auto ck = Checkpoint::open(dir_);
  EXPECT_EQ(ck.dir(), dir_);
  EXPECT_EQ(ck.files().size(), 1u);
  EXPECT_EQ(ck.tensor_count(), 2u);
  EXPECT_EQ(ck.total_tensor_bytes(), (6u + 5u) * 4u);
  EXPECT_EQ(first_value(ck.get("a", {2, 3})), 1.f);
  EXPECT_EQ(first_value(ck.get("b")), 10.f);
  EXPECT_EQ(*ck.get("b").file, dir_ / "model.safetensors");
  EXPECT_EQ(ck.find("c"), nullptr);
}

TEST_F(CheckpointTest, OpensAShardedCheckpoint) {
  write_sharded();
  const auto ck = Checkpoint::open(dir_);
  EXPECT_EQ(ck.files().size(), 2u);
  EXPECT_EQ(ck.tensor_count(), 4u);
  EXPECT_EQ(ck.total_tensor_bytes(), (8u + 6u + 3u + 2u) * 4u);
  EXPECT_EQ(first_value(ck.get("embed", {4, 2})), 0.f);
  EXPECT_EQ(first_value(ck.get("layers.0.w", {2, 3})), 100.f);
  EXPECT_EQ(first_value(ck.get("layers.1.w", {3})), 200.f);
  EXPECT_EQ(first_value(ck.get("norm", {2})), 300.f);
  EXPECT_EQ(*ck.get("embed").file, dir_ / "model-00001-of-00002.safetensors");
  EXPECT_EQ(*ck.get("norm").file, dir_ / "model-00002-of-00002.safetensors");
}

TEST_F(CheckpointTest, IndexTakesPrecedenceOverASingleFile) {
  write_sharded();
  write_safetensors(dir_ / "model.safetensors", {{"other", {1}, 0}});
  const auto ck = Checkpoint::open(dir_);
  EXPECT_EQ(ck.find("other"), nullptr);
  EXPECT_NE(ck.find("norm"), nullptr);
}

TEST_F(CheckpointTest, TensorInAShardButNotInTheIndexIsFine) {
  write_sharded();
  write_safetensors(dir_ / "model-00002-of-00002.safetensors",
                    {{"layers.1.w", {3}, 200}, {"norm", {2}, 300}, {"extra", {1}, 400}});
  const auto ck = Checkpoint::open(dir_);
  EXPECT_EQ(ck.tensor_count(), 5u);
  EXPECT_EQ(first_value(ck.get("extra")), 400.f);
}

TEST_F(CheckpointTest, SurvivesMovesAndCopies) {
  write_sharded();
  auto ck = Checkpoint::open(dir_);
  Checkpoint moved = std::move(ck);
  Checkpoint copy;
  {
    const Checkpoint temp = moved;
    copy = temp;
  }  // the copy's map must not point into temp
  moved = Checkpoint();
  ASSERT_NE(copy.find("norm"), nullptr);
  EXPECT_EQ(first_value(copy.get("norm")), 300.f);
  EXPECT_EQ(copy.find("norm"), copy.files()[1].find("norm"));
  EXPECT_EQ(*copy.get("embed").file, dir_ / "model-00001-of-00002.safetensors");
}

TEST_F(CheckpointTest, FolderMissing) {
  const fs::path missing = dir_ / "nope";
  try {
    Checkpoint::open(missing);
    ADD_FAILURE() << "expected a moeflow::Error";
  } catch (const Error& e) {
    expect_contains(e.what(), {missing.string() + ": ", "does not exist"});
  }
}

TEST_F(CheckpointTest, PathIsAFile) {
  write_text(dir_ / "file", "x");
  try {
    Checkpoint::open(dir_ / "file");
    ADD_FAILURE() << "expected a moeflow::Error";
  } catch (const Error& e) {
    expect_contains(e.what(), {(dir_ / "file").string() + ": ", "not a folder"});
  }
}

TEST_F(CheckpointTest, FolderWithoutWeights) {
  write_text(dir_ / "config.json", "{}");
  expect_contains(open_error(), {dir_.string() + ": no model.safetensors or "
                                                 "model.safetensors.index.json"});
}

TEST_F(CheckpointTest, BadSingleFileNamesTheFile) {
  write_text(dir_ / "model.safetensors", "short");
  expect_contains(open_error(), {(dir_ / "model.safetensors").string() + ": ", "too short"});
}

TEST_F(CheckpointTest, IndexIsNotValid) {
  const auto index = (dir_ / "model.safetensors.index.json").string();
  write_text(index, "{\"weight_map\": ");
  expect_contains(open_error(), {index + ": not valid JSON"});
  write_text(index, "[]");
  expect_contains(open_error(), {index + ": not a JSON object"});
  write_text(index, "{}");
  expect_contains(open_error(), {index + ": missing \"weight_map\""});
  write_text(index, R"({"weight_map": ["a"]})");
  expect_contains(open_error(), {index + ": \"weight_map\" is not an object"});
  write_text(index, R"({"weight_map": {}})");
  expect_contains(open_error(), {index + ": \"weight_map\" is empty"});
  write_text(index, R"({"weight_map": {"embed": 3}})");
  expect_contains(open_error(), {index + ": tensor embed: shard is not a string"});
}

TEST_F(CheckpointTest, IndexNamesAMissingShard) {
  write_sharded();
  fs::remove(dir_ / "model-00002-of-00002.safetensors");
  expect_contains(open_error(),
                  {(dir_ / "model.safetensors.index.json").string() + ": ",
                   "shard model-00002-of-00002.safetensors", "tensor layers.1.w", "is missing"});
}

TEST_F(CheckpointTest, IndexNamesATensorItsShardLacks) {
  write_sharded();
  write_safetensors(dir_ / "model-00002-of-00002.safetensors", {{"layers.1.w", {3}, 200}});
  expect_contains(open_error(),
                  {(dir_ / "model.safetensors.index.json").string() + ": ", "tensor norm",
                   "shard model-00002-of-00002.safetensors", "does not contain it"});
}

TEST_F(CheckpointTest, ShardNameMustStayInTheFolder) {
  // The file exists, so only the name check can reject it.
  fs::create_directories(dir_ / "ck");
  write_safetensors(dir_ / "outside.safetensors", {{"embed", {1}, 0}});
  const fs::path index = dir_ / "ck" / "model.safetensors.index.json";
  for (const std::string shard : {"../outside.safetensors", "..", "sub/x.safetensors", ""}) {
    SCOPED_TRACE(shard);
    write_text(index, json{{"weight_map", {{"embed", shard}}}}.dump());
    try {
      Checkpoint::open(dir_ / "ck");
      ADD_FAILURE() << "expected a moeflow::Error";
    } catch (const Error& e) {
      expect_contains(e.what(), {index.string() + ": ", "tensor embed",
                                 "\"" + shard + "\" is not a plain file name"});
    }
  }
}

TEST_F(CheckpointTest, BadShardNamesTheShard) {
  write_sharded();
  write_text(dir_ / "model-00001-of-00002.safetensors", std::string(8, '\0'));
  expect_contains(open_error(), {(dir_ / "model-00001-of-00002.safetensors").string() + ": ",
                                 "header is not valid JSON"});
}

TEST_F(CheckpointTest, DuplicateTensorAcrossShards) {
  write_sharded();
  // The index places norm in shard 2, but shard 1 holds a norm as well.
  write_safetensors(dir_ / "model-00001-of-00002.safetensors",
                    {{"embed", {4, 2}, 0}, {"layers.0.w", {2, 3}, 100}, {"norm", {2}, 7}});
  expect_contains(open_error(),
                  {dir_.string() + ": tensor norm is in both", "model-00001-of-00002.safetensors",
                   "model-00002-of-00002.safetensors"});
}

TEST_F(CheckpointTest, GetOfAMissingTensor) {
  write_sharded();
  const auto ck = Checkpoint::open(dir_);
  try {
    ck.get("lm_head.weight");
    ADD_FAILURE() << "expected a moeflow::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir_.string() + ": tensor lm_head.weight is missing");
  }
  EXPECT_THROW(ck.get("lm_head.weight", {1}), Error);
}

TEST_F(CheckpointTest, GetWithTheWrongShape) {
  write_sharded();
  const auto ck = Checkpoint::open(dir_);
  try {
    ck.get("layers.0.w", {3, 2});
    ADD_FAILURE() << "expected a moeflow::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "model-00001-of-00002.safetensors").string() +
                                         ": tensor layers.0.w has shape [2, 3], expected [3, 2]");
  }
  EXPECT_THROW(ck.get("norm", {}), Error);
  EXPECT_THROW(ck.get("norm", {2, 1}), Error);
}

TEST(CheckpointShapeString, Formats) {
  EXPECT_EQ(shape_string({}), "[]");
  EXPECT_EQ(shape_string({7}), "[7]");
  EXPECT_EQ(shape_string({2, 3, 4}), "[2, 3, 4]");
}

}  // namespace
}  // namespace moeflow
