#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "errors.h"
#include "json.h"

namespace difflm {

namespace {

// Headers above this size are rejected before reading them (real ones are kilobytes).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void load_error(const std::string& file, const std::string& what) {
  throw EngineError(ErrorCode::ModelLoad, file + ": " + what);
}

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32")
    *out = DType::F32;
  else if (s == "F16")
    *out = DType::F16;
  else if (s == "BF16")
    *out = DType::BF16;
  else
    return false;
  return true;
}

bool is_known_safetensors_dtype(const std::string& s) {
  static const char* const kAll[] = {
      "BOOL", "U8",  "I8",  "I16",     "U16",     "F16",     "BF16", "I32",     "U32",     "F32",
      "F64",  "I64", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",   "F6_E2M3", "F6_E3M2", "C64"};
  for (const char* d : kAll)
    if (s == d) return true;
  return false;
}

// A JSON number that is a non-negative integer below 2^53.
bool as_index(const JsonValue& v, uint64_t* out) {
  if (!v.is_number() || v.number < 0 || v.number > 9007199254740992.0 ||
      std::floor(v.number) != v.number)
    return false;
  *out = static_cast<uint64_t>(v.number);
  return true;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) load_error(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    load_error(path, std::string("cannot stat: ") + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    load_error(path, "not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      load_error(path, std::string("cannot mmap: ") + std::strerror(e));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

WeightStore::WeightStore(const std::vector<std::string>& files) {
  if (files.empty()) throw EngineError(ErrorCode::ModelLoad, "no safetensors files given");
  for (const auto& f : files) add_file(f);
}

WeightStore WeightStore::from_memory(std::map<std::string, TensorView> tensors) {
  WeightStore ws;
  ws.tensors_ = std::move(tensors);
  return ws;
}

void WeightStore::add_file(const std::string& path) {
  auto file = std::make_unique<MappedFile>(path);
  const uint64_t size = file->size();
  if (size < 8) load_error(path, "truncated: " + std::to_string(size) + " bytes, no header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
  if (header_len > kMaxHeaderBytes)
    load_error(path, "header length " + std::to_string(header_len) + " is implausibly large");
  if (8 + header_len > size)
    load_error(path, "truncated: header length " + std::to_string(header_len) +
                         " runs past the end of the " + std::to_string(size) + "-byte file");
  std::string header(reinterpret_cast<const char*>(file->data()) + 8, header_len);
  JsonValue root;
  try {
    root = parse_json(header);
  } catch (const std::exception& e) {
    load_error(path, std::string("corrupt header: ") + e.what());
  }
  if (!root.is_object()) load_error(path, "corrupt header: not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_len = size - data_start;
  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  std::vector<TensorView> views;
  for (const auto& kv : root.object) {
    const std::string& name = kv.first;
    const JsonValue& e = kv.second;
    if (name == "__metadata__") {
      if (!e.is_object()) load_error(path, "__metadata__ is not an object");
      continue;
    }
    auto bad = [&](const std::string& what) { load_error(path, "tensor '" + name + "': " + what); };
    if (!e.is_object()) bad("entry is not an object");
    const JsonValue* dt = e.find("dtype");
    const JsonValue* shape = e.find("shape");
    const JsonValue* offs = e.find("data_offsets");
    if (!dt || !dt->is_string()) bad("missing dtype");
    if (!shape || !shape->is_array()) bad("missing shape");
    if (!offs || !offs->is_array() || offs->array.size() != 2) bad("missing data_offsets");
    TensorView v;
    v.name = name;
    v.file = path;
    if (!parse_dtype(dt->string, &v.dtype)) {
      if (is_known_safetensors_dtype(dt->string))
        bad("dtype " + dt->string + " is not supported (F32, F16 and BF16 are)");
      bad("unknown dtype \"" + dt->string + "\"");
    }
    uint64_t numel = 1;
    for (const auto& d : shape->array) {
      uint64_t dim;
      if (!as_index(d, &dim)) bad("shape entries must be non-negative integers");
      if (dim != 0 && numel > (1ull << 48) / dim) bad("shape is implausibly large");
      numel *= dim;
      v.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t begin, end;
    if (!as_index(offs->array[0], &begin) || !as_index(offs->array[1], &end) || begin > end)
      bad("data_offsets must be two non-negative integers, begin <= end");
    if (end > data_len)
      bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
          "] run past the end of the data (" + std::to_string(data_len) + " bytes)");
    const uint64_t expected = numel * dtype_size(v.dtype);
    if (end - begin != expected)
      bad("holds " + std::to_string(end - begin) + " bytes but shape " + v.shape_string() + " of " +
          dt->string + " needs " + std::to_string(expected));
    v.bytes = static_cast<size_t>(expected);
    v.data = file->data() + data_start + begin;
    ranges.push_back({begin, end, &kv.first});
    views.push_back(std::move(v));
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin; });
  // Track the furthest end seen so far, so an overlap with any earlier tensor is caught.
  const Range* furthest = nullptr;
  for (const auto& r : ranges) {
    if (furthest && r.end > r.begin && r.begin < furthest->end)
      load_error(path, "tensors '" + *furthest->name + "' and '" + *r.name +
                           "' overlap in the data section");
    if (!furthest || r.end > furthest->end) furthest = &r;
  }

  for (auto& v : views) {
    if (reinterpret_cast<uintptr_t>(v.data) % dtype_size(v.dtype) != 0 && v.bytes > 0) {
      // Keep every later access aligned (and free of undefined behaviour) at the price of a copy.
      std::unique_ptr<uint8_t[]> copy(new uint8_t[v.bytes]);
      std::memcpy(copy.get(), v.data, v.bytes);
      v.data = copy.get();
      aligned_copies_.push_back(std::move(copy));
    }
    if (tensors_.count(v.name))
      load_error(path, "tensor '" + v.name + "' also appears in " + tensors_[v.name].file);
    std::string key = v.name;
    tensors_.emplace(std::move(key), std::move(v));
  }
  files_.push_back(std::move(file));
}

const TensorView* WeightStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& WeightStore::require(const std::string& name,
                                       const std::vector<int64_t>& shape) const {
  const TensorView* t = find(name);
  if (!t) {
    std::string where = files_.size() == 1 ? files_[0]->path() : "the checkpoint's shards";
    throw EngineError(ErrorCode::ModelLoad, "missing tensor '" + name + "' in " + where);
  }
  if (t->shape != shape) {
    TensorView want;
    want.shape = shape;
    throw EngineError(ErrorCode::ModelLoad, t->file + ": tensor '" + name + "' has shape " +
                                                t->shape_string() + ", expected " +
                                                want.shape_string());
  }
  return *t;
}

size_t WeightStore::mapped_bytes() const {
  size_t n = 0;
  for (const auto& f : files_) n += f->size();
  return n;
}

}  // namespace difflm
