#include "model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/support/temp_dir.h"

namespace moeflow {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Bytes = std::vector<uint8_t>;

struct TestTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  Bytes bytes;
};

using test_support::TempDir;

Bytes le_u64(uint64_t v) {
  Bytes b(8);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}

void write_bytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Header length + header + data, with no checks: the caller may pass any header text.
Bytes file_bytes(const std::string& header, const Bytes& data) {
  // Sized up front: growing an 8-byte vector trips a GCC 12 -Warray-bounds false positive.
  Bytes out(8 + header.size() + data.size());
  const Bytes length = le_u64(header.size());
  auto it = std::copy(length.begin(), length.end(), out.begin());
  it = std::copy(header.begin(), header.end(), it);
  std::copy(data.begin(), data.end(), it);
  return out;
}

// The tensors laid out back to back, with a correct header.
Bytes file_bytes(const std::vector<TestTensor>& tensors) {
  json header = {{"__metadata__", {{"format", "pt"}}}};
  Bytes data;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  return file_bytes(header.dump(), data);
}

template <class T>
Bytes raw(std::initializer_list<T> values) {
  Bytes b(values.size() * sizeof(T));
  std::memcpy(b.data(), std::data(values), b.size());
  return b;
}

// The message of the moeflow::Error that f throws; records a failure when it throws none.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a moeflow::Error";
  return "";
}

void expect_contains(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& part : parts) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "message \"" << message << "\" lacks \"" << part << "\"";
  }
}

class SafetensorsTest : public testing::Test {
 protected:
  // Writes `header` (raw text) and `data` to model.safetensors and expects open() to fail with a
  // message holding the file path and every part.
  void expect_open_fails(const std::string& header, const Bytes& data,
                         std::initializer_list<std::string> parts) {
    write_bytes(file(), file_bytes(header, data));
    const auto message = error_of([&] { SafetensorsFile::open(file()); });
    expect_contains(message, {file().string() + ": "});
    expect_contains(message, parts);
  }
  fs::path file() const { return dir_.path() / "model.safetensors"; }

  TempDir dir_;
};

TEST_F(SafetensorsTest, ReadsAGoodFile) {
  const Bytes f32 = raw<float>({0.f, 1.5f, -2.f, 3.f, 4.25f, 5.f});
  const Bytes bf16 = raw<uint16_t>({0x3F80, 0xC000, 0x0000, 0x7F80});  // 1, -2, 0, inf
  const Bytes f16 = raw<uint16_t>({0x3C00, 0xBC00});                   // 1, -1
  const Bytes scalar = raw<float>({42.f});
  write_bytes(file(), file_bytes({{"model.w", "F32", {2, 3}, f32},
                                  {"model.b", "BF16", {4}, bf16},
                                  {"model.h", "F16", {1, 2}, f16},
                                  {"scalar", "F32", {}, scalar},
                                  {"empty", "F32", {0, 4}, {}}}));

  const auto f = SafetensorsFile::open(file());
  EXPECT_EQ(f.path(), file());
  EXPECT_EQ(f.file_size(), fs::file_size(file()));
  ASSERT_EQ(f.tensors().size(), 5u);
  for (size_t i = 1; i < f.tensors().size(); ++i) {
    EXPECT_LT(f.tensors()[i - 1].name, f.tensors()[i].name);
  }

  const auto check = [&](const char* name, DType dtype, std::vector<int64_t> shape,
                         const Bytes& bytes) {
    SCOPED_TRACE(name);
    const TensorInfo* t = f.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->name, name);
    EXPECT_EQ(t->dtype, dtype);
    EXPECT_EQ(t->shape, shape);
    EXPECT_EQ(t->nbytes, bytes.size());
    EXPECT_EQ(static_cast<size_t>(t->numel()) * dtype_size(dtype), bytes.size());
    ASSERT_NE(t->file, nullptr);
    EXPECT_EQ(*t->file, file());
    if (!bytes.empty()) {  // memcmp must not get the null data() of an empty vector
      EXPECT_EQ(std::memcmp(t->data, bytes.data(), bytes.size()), 0);
    }
  };
  check("model.w", DType::f32, {2, 3}, f32);
  check("model.b", DType::bf16, {4}, bf16);
  check("model.h", DType::f16, {1, 2}, f16);
  check("scalar", DType::f32, {}, scalar);
  check("empty", DType::f32, {0, 4}, {});
  EXPECT_EQ(f.find("scalar")->numel(), 1);
  EXPECT_EQ(f.find("empty")->numel(), 0);

  float values[6];
  std::memcpy(values, f.find("model.w")->data, sizeof(values));
  EXPECT_EQ(values[1], 1.5f);
  EXPECT_EQ(values[4], 4.25f);

  EXPECT_EQ(f.find("model"), nullptr);
  EXPECT_EQ(f.find("model.w2"), nullptr);
  EXPECT_EQ(f.find(""), nullptr);
  EXPECT_EQ(f.find("__metadata__"), nullptr);
}

TEST_F(SafetensorsTest, TensorInfoSurvivesMovesAndCopies) {
  write_bytes(file(), file_bytes({{"w", "F32", {1}, raw<float>({7.f})}}));
  auto f = SafetensorsFile::open(file());
  auto moved = std::move(f);
  const auto copy = moved;
  moved = SafetensorsFile::open(file());  // drops the first mapping's owner; the copy keeps it
  const TensorInfo* t = copy.find("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(*t->file, file());
  float v = 0;
  std::memcpy(&v, t->data, 4);
  EXPECT_EQ(v, 7.f);
}

TEST_F(SafetensorsTest, HeaderWithoutTensorsIsValid) {
  write_bytes(file(), file_bytes(R"({"__metadata__": {"a": "b"}})", {}));
  EXPECT_TRUE(SafetensorsFile::open(file()).tensors().empty());
}

TEST_F(SafetensorsTest, MissingFile) {
  const auto message = error_of([&] { SafetensorsFile::open(file()); });
  expect_contains(message, {file().string(), "No such file or directory"});
}

TEST_F(SafetensorsTest, DirectoryInsteadOfFile) {
  const auto message = error_of([&] { SafetensorsFile::open(dir_.path()); });
  expect_contains(message, {dir_.path().string(), "Is a directory"});
}

TEST_F(SafetensorsTest, EmptyFile) {
  write_bytes(file(), {});
  expect_contains(error_of([&] { SafetensorsFile::open(file()); }),
                  {file().string(), "0 bytes, too short"});
}

TEST_F(SafetensorsTest, ShorterThanTheHeaderLength) {
  write_bytes(file(), {1, 2, 3});
  expect_contains(error_of([&] { SafetensorsFile::open(file()); }),
                  {file().string(), "3 bytes, too short"});
}

TEST_F(SafetensorsTest, TruncatedHeader) {
  Bytes bytes = file_bytes({{"w", "F32", {4}, raw<float>({1, 2, 3, 4})}});
  bytes.resize(20);
  write_bytes(file(), bytes);
  expect_contains(error_of([&] { SafetensorsFile::open(file()); }),
                  {file().string(), "exceeds the file size (20 bytes)"});
}

TEST_F(SafetensorsTest, HeaderLengthNearTwoToThe64) {
  Bytes bytes(64, '{');
  const Bytes length = le_u64(~uint64_t{0} - 3);  // + 8 would wrap around
  std::copy(length.begin(), length.end(), bytes.begin());
  write_bytes(file(), bytes);
  expect_contains(error_of([&] { SafetensorsFile::open(file()); }),
                  {file().string(), "exceeds the file size"});
}

TEST_F(SafetensorsTest, ImplausiblyLargeHeader) {
  // A sparse 200 MB file whose header length fits in it but is beyond any real header.
  write_bytes(file(), le_u64(150ull << 20));
  fs::resize_file(file(), 200ull << 20);
  expect_contains(error_of([&] { SafetensorsFile::open(file()); }),
                  {file().string(), "implausibly large"});
}

TEST_F(SafetensorsTest, HeaderIsNotJson) {
  expect_open_fails(R"({"w": {"dtype": "F32",)", {}, {"header is not valid JSON"});
  expect_open_fails("", {}, {"header is not valid JSON"});
  expect_open_fails("{\"\xff\xfe\": 1}", {}, {"header is not valid JSON"});  // bad UTF-8
}

TEST_F(SafetensorsTest, HeaderIsNotAnObject) {
  expect_open_fails("[1, 2, 3]", {}, {"header is not a JSON object"});
  expect_open_fails("\"w\"", {}, {"header is not a JSON object"});
}

TEST_F(SafetensorsTest, EntryIsNotAnObject) {
  expect_open_fails(R"({"model.w": [1, 2]})", {}, {"tensor model.w: entry is not a JSON object"});
}

TEST_F(SafetensorsTest, MissingFields) {
  const Bytes data(16);
  expect_open_fails(R"({"w": {"shape": [4], "data_offsets": [0, 16]}})", data,
                    {"tensor w: missing \"dtype\""});
  expect_open_fails(R"({"w": {"dtype": "F32", "data_offsets": [0, 16]}})", data,
                    {"tensor w: missing \"shape\""});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [4]}})", data,
                    {"tensor w: missing \"data_offsets\""});
}

TEST_F(SafetensorsTest, WrongFieldTypes) {
  const Bytes data(16);
  expect_open_fails(R"({"w": {"dtype": 4, "shape": [4], "data_offsets": [0, 16]}})", data,
                    {"tensor w: \"dtype\" is not a string"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}})", data,
                    {"tensor w: \"shape\" is not an array"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}})", data,
                    {"tensor w: \"shape\" holds a non-integer"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [-4, -1], "data_offsets": [0, 16]}})", data,
                    {"tensor w: negative dimension -4"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16]}})", data,
                    {"tensor w: \"data_offsets\" must be two non-negative integers"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}})", data,
                    {"tensor w: \"data_offsets\" must be two non-negative integers"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": {"b": 0}}})", data,
                    {"tensor w: \"data_offsets\" must be two non-negative integers"});
}

TEST_F(SafetensorsTest, UnsupportedDtype) {
  expect_open_fails(R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})",
                    Bytes(16), {"tensor ids: dtype I64 is not supported"});
}

TEST_F(SafetensorsTest, ShapeDoesNotMatchTheByteCount) {
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})",
                    Bytes(12), {"tensor w: shape [2, 2] x F32 is 16 bytes", "span 12"});
  expect_open_fails(R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 12]}})", Bytes(12),
                    {"tensor w: shape [3] x BF16 is 6 bytes"});
}

TEST_F(SafetensorsTest, ShapeOverflow) {
  expect_open_fails(
      R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}})",
      Bytes(16), {"tensor w: shape [4611686018427387904, 4] overflows"});
  // numel fits in int64 but numel x 4 bytes does not fit in uint64.
  expect_open_fails(
      R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 16]}})",
      Bytes(16), {"tensor w: shape [4611686018427387904] overflows"});
  expect_open_fails(
      R"({"w": {"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 16]}})",
      Bytes(16), {"tensor w: dimension 18446744073709551615 is too large"});
}

TEST_F(SafetensorsTest, OffsetsOutsideTheFile) {
  expect_open_fails(
      R"({"model.norm.weight": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}})",
      Bytes(256),
      {"tensor model.norm.weight: data_offsets [0, 400] exceed the data region (256 bytes)"});
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [300, 300]}})",
                    Bytes(256),
                    {"tensor w: data_offsets [300, 300] exceed the data region (256 bytes)"});
  // begin + size would wrap around if added up instead of compared.
  expect_open_fails(
      R"({"w": {"dtype": "F32", "shape": [1],
          "data_offsets": [18446744073709551612, 18446744073709551616]}})",
      Bytes(256), {"tensor w: \"data_offsets\" must be two non-negative integers"});
}

TEST_F(SafetensorsTest, BeginAfterEnd) {
  expect_open_fails(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", Bytes(16),
                    {"tensor w: data_offsets [8, 4] have begin > end"});
}

TEST_F(SafetensorsTest, OverlappingTensors) {
  expect_open_fails(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                    Bytes(24), {"tensor b: data_offsets [8, 24] overlap tensor a [0, 16]"});
  // The overlap is between the first and last tensor by name; sorting by begin finds it.
  expect_open_fails(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [28, 32]},
                        "b": {"dtype": "F32", "shape": [7], "data_offsets": [0, 28]},
                        "c": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}})",
                    Bytes(32), {"overlap tensor"});
  expect_open_fails(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                        "b": {"dtype": "BF16", "shape": [8], "data_offsets": [0, 16]}})",
                    Bytes(16), {"overlap tensor"});
}

TEST_F(SafetensorsTest, EmptyTensorsDoNotOverlap) {
  write_bytes(file(), file_bytes(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                     "b": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]},
                                     "c": {"dtype": "F16", "shape": [0], "data_offsets": [8, 8]}})",
                                 Bytes(16)));
  EXPECT_EQ(SafetensorsFile::open(file()).tensors().size(), 3u);
}

// Corrupts the header of a valid file at random: open() must either reject the file with a
// moeflow::Error or return tensors that all lie inside the data region. Under ASan/valgrind this
// also proves that the parser never reads outside the mapping.
TEST_F(SafetensorsTest, RandomHeaderCorruptionNeverCrashes) {
  const Bytes good = file_bytes({{"a.weight", "F32", {2, 3}, raw<float>({1, 2, 3, 4, 5, 6})},
                                 {"b", "BF16", {4}, raw<uint16_t>({1, 2, 3, 4})},
                                 {"c", "F16", {}, raw<uint16_t>({5})},
                                 {"d", "F32", {0}, {}}});
  uint64_t good_header = 0;
  for (int i = 7; i >= 0; --i) good_header = (good_header << 8) | good[i];
  const std::string interesting = "0123456789[]{},:\"-.eE ";
  // Rewriting only digits keeps the JSON valid, so those mutants reach the shape/offset checks.
  std::vector<size_t> digits;
  for (size_t i = 8; i < 8 + good_header; ++i) {
    if (good[i] >= '0' && good[i] <= '9') digits.push_back(i);
  }

  std::mt19937 rng(20240607);
  int accepted = 0;
  for (int iter = 0; iter < 800; ++iter) {
    Bytes bytes = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const unsigned mode = rng() % 10;
      if (mode == 0) {  // the length field
        bytes[rng() % 8] = static_cast<uint8_t>(rng());
      } else if (mode < 5) {
        bytes[digits[rng() % digits.size()]] = static_cast<uint8_t>('0' + rng() % 10);
      } else {
        bytes[8 + rng() % good_header] =
            rng() % 2 ? static_cast<uint8_t>(rng())
                      : static_cast<uint8_t>(interesting[rng() % interesting.size()]);
      }
    }
    write_bytes(file(), bytes);
    SCOPED_TRACE("iteration " + std::to_string(iter));
    try {
      const auto f = SafetensorsFile::open(file());
      ++accepted;
      // The corrupted header still parsed, so compare every tensor with what it says.
      uint64_t header = 0;
      for (int i = 7; i >= 0; --i) header = (header << 8) | bytes[i];
      const uint64_t data_size = bytes.size() - 8 - header;
      const json j = json::parse(bytes.begin() + 8, bytes.begin() + 8 + header);
      const std::byte* base = nullptr;
      for (const auto& t : f.tensors()) {
        const auto offsets = j.at(t.name).at("data_offsets");
        const uint64_t b = offsets[0].get<uint64_t>();
        const uint64_t e = offsets[1].get<uint64_t>();
        ASSERT_LE(b, e);
        ASSERT_LE(e, data_size);
        ASSERT_EQ(t.nbytes, e - b);
        ASSERT_EQ(static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype), t.nbytes);
        if (base == nullptr) base = t.data - b;
        ASSERT_EQ(t.data, base + b);
        Bytes copy(t.nbytes);
        if (t.nbytes > 0) std::memcpy(copy.data(), t.data, t.nbytes);  // touches every byte
      }
    } catch (const Error& e) {
      ASSERT_EQ(std::string(e.what()).rfind(file().string() + ": ", 0), 0u) << e.what();
    }
  }
  RecordProperty("accepted", accepted);
  // Sanity: the fuzzer is not so destructive that nothing ever gets through.
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace moeflow
