#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "core/error.h"

namespace moeflow {

namespace {

using nlohmann::json;

// Real headers are a few hundred KB at most; anything bigger is a corrupt length field, and
// refusing it early keeps us from handing a huge buffer to the JSON parser.
constexpr uint64_t max_header_bytes = 100ull << 20;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw Error(path.string() + ": " + what);
}

[[noreturn]] void fail_tensor(const std::filesystem::path& path, const std::string& tensor,
                              const std::string& what) {
  fail(path, "tensor " + tensor + ": " + what);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string dims_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

// A read-only private mapping of a whole file. The file descriptor is closed right after mapping;
// the mapping stays valid until munmap.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path) {
    // O_NONBLOCK so that a FIFO passed by mistake fails below instead of hanging in open().
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(path, "cannot open: " + errno_text(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      fail(path, "cannot stat: " + errno_text(err));
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      fail(path, "cannot open: " + errno_text(EISDIR));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(path, "cannot open: not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {  // mmap rejects a zero length; an empty file is reported by the parser
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        fail(path, "cannot mmap: " + errno_text(err));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at open(): no overflow, no negative dims
  return n;
}

namespace {

uint64_t read_le_u64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

DType parse_dtype(const std::filesystem::path& path, const std::string& name, const json& entry) {
  const auto it = entry.find("dtype");
  if (it == entry.end()) fail_tensor(path, name, "missing \"dtype\"");
  if (!it->is_string()) fail_tensor(path, name, "\"dtype\" is not a string");
  const auto& s = it->get_ref<const std::string&>();
  const auto dtype = parse_safetensors_dtype(s);
  if (!dtype) fail_tensor(path, name, "dtype " + s + " is not supported (only F32, BF16, F16)");
  return *dtype;
}

std::vector<int64_t> parse_shape(const std::filesystem::path& path, const std::string& name,
                                 const json& entry) {
  const auto it = entry.find("shape");
  if (it == entry.end()) fail_tensor(path, name, "missing \"shape\"");
  if (!it->is_array()) fail_tensor(path, name, "\"shape\" is not an array");
  std::vector<int64_t> shape;
  shape.reserve(it->size());
  for (const auto& d : *it) {
    if (d.is_number_unsigned()) {
      const auto v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail_tensor(path, name, "dimension " + std::to_string(v) + " is too large");
      }
      shape.push_back(static_cast<int64_t>(v));
    } else if (d.is_number_integer()) {  // nlohmann stores only negative integers as signed
      fail_tensor(path, name, "negative dimension " + std::to_string(d.get<int64_t>()));
    } else {
      fail_tensor(path, name, "\"shape\" holds a non-integer: " + d.dump());
    }
  }
  return shape;
}

std::pair<uint64_t, uint64_t> parse_offsets(const std::filesystem::path& path,
                                            const std::string& name, const json& entry) {
  const auto it = entry.find("data_offsets");
  if (it == entry.end()) fail_tensor(path, name, "missing \"data_offsets\"");
  if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number_unsigned() ||
      !(*it)[1].is_number_unsigned()) {
    fail_tensor(path, name,
                "\"data_offsets\" must be two non-negative integers, got " + it->dump());
  }
  return {(*it)[0].get<uint64_t>(), (*it)[1].get<uint64_t>()};
}

// numel x dtype size; fails when it does not fit in int64.
uint64_t checked_nbytes(const std::filesystem::path& path, const std::string& name,
                        const std::vector<int64_t>& shape, DType dtype) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) ||
        n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail_tensor(path, name, "shape " + dims_string(shape) + " overflows");
    }
  }
  if (__builtin_mul_overflow(n, dtype_size(dtype), &n)) {
    fail_tensor(path, name, "shape " + dims_string(shape) + " overflows");
  }
  return n;
}

std::string offsets_string(uint64_t b, uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
}

struct Parsed {
  TensorInfo info;
  uint64_t begin = 0;
  uint64_t end = 0;
};

Parsed parse_entry(const std::filesystem::path& path, const std::string& name, const json& entry,
                   const std::byte* data_region, uint64_t data_size) {
  if (!entry.is_object()) fail_tensor(path, name, "entry is not a JSON object");
  Parsed p;
  p.info.name = name;
  p.info.dtype = parse_dtype(path, name, entry);
  p.info.shape = parse_shape(path, name, entry);
  std::tie(p.begin, p.end) = parse_offsets(path, name, entry);
  const auto offsets = offsets_string(p.begin, p.end);
  if (p.begin > p.end) fail_tensor(path, name, "data_offsets " + offsets + " have begin > end");
  if (p.end > data_size) {
    fail_tensor(path, name,
                "data_offsets " + offsets + " exceed the data region (" +
                    std::to_string(data_size) + " bytes)");
  }
  const uint64_t nbytes = checked_nbytes(path, name, p.info.shape, p.info.dtype);
  if (nbytes != p.end - p.begin) {
    fail_tensor(path, name,
                "shape " + dims_string(p.info.shape) + " x " +
                    std::string(dtype_name(p.info.dtype)) + " is " + std::to_string(nbytes) +
                    " bytes but data_offsets " + offsets + " span " +
                    std::to_string(p.end - p.begin));
  }
  p.info.nbytes = static_cast<size_t>(nbytes);
  p.info.data = data_region + p.begin;
  return p;
}

// Sorted by begin, any overlap between non-empty ranges shows up between neighbours.
void check_no_overlap(const std::filesystem::path& path, std::vector<Parsed>& parsed) {
  std::vector<const Parsed*> ranges;
  for (const auto& p : parsed) {
    if (p.end > p.begin) ranges.push_back(&p);
  }
  std::sort(ranges.begin(), ranges.end(), [](const Parsed* a, const Parsed* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Parsed& a = *ranges[i - 1];
    const Parsed& b = *ranges[i];
    if (a.end > b.begin) {
      fail_tensor(path, b.info.name,
                  "data_offsets " + offsets_string(b.begin, b.end) + " overlap tensor " +
                      a.info.name + " " + offsets_string(a.begin, a.end));
    }
  }
}

json parse_header(const std::filesystem::path& path, const MappedFile& file,
                  uint64_t& header_size) {
  if (file.size() < 8) {
    fail(path, "file is " + std::to_string(file.size()) +
                   " bytes, too short for the 8-byte header length");
  }
  header_size = read_le_u64(file.data());
  if (header_size > file.size() - 8) {
    fail(path, "header length " + std::to_string(header_size) + " exceeds the file size (" +
                   std::to_string(file.size()) + " bytes): the file is truncated or corrupt");
  }
  if (header_size > max_header_bytes) {
    fail(path, "header length " + std::to_string(header_size) + " is implausibly large");
  }
  const auto* first = reinterpret_cast<const char*>(file.data() + 8);
  json header;
  try {
    header = json::parse(first, first + header_size, nullptr, /*allow_exceptions=*/false);
  } catch (const json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (header.is_discarded()) fail(path, "header is not valid JSON");
  if (!header.is_object()) fail(path, "header is not a JSON object");
  return header;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.path_ = std::make_shared<std::filesystem::path>(path);
  f.mapping_ = std::make_shared<MappedFile>(path);
  const MappedFile& m = *f.mapping_;

  uint64_t header_size = 0;
  const json header = parse_header(path, m, header_size);
  const std::byte* data_region = m.data() + 8 + header_size;
  const uint64_t data_size = m.size() - 8 - header_size;

  std::vector<Parsed> parsed;
  parsed.reserve(header.size());
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    parsed.push_back(parse_entry(path, name, entry, data_region, data_size));
  }
  check_no_overlap(path, parsed);

  f.tensors_.reserve(parsed.size());
  for (auto& p : parsed) {
    p.info.file = f.path_.get();
    f.tensors_.push_back(std::move(p.info));
  }
  std::sort(f.tensors_.begin(), f.tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = std::lower_bound(
      tensors_.begin(), tensors_.end(), name,
      [](const TensorInfo& t, std::string_view n) { return std::string_view(t.name) < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

size_t SafetensorsFile::file_size() const {
  return mapping_ ? mapping_->size() : 0;
}

}  // namespace moeflow
