// Safetensors weights over mmap: zero copy on CPU. Every header is validated in full before
// any tensor is handed out (well-formed JSON, known dtypes, sizes equal to shape x dtype size,
// offsets inside the file, no overlaps), so a corrupt file fails at load with its name.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"

namespace difflm {

// A read-only private mapping of a whole file; unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct TensorView {
  std::string name;
  std::string file;  // path of the file holding it, for error messages
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;

  int64_t numel() const;
  std::string shape_string() const;
};

// Tensors of one checkpoint: one file or every shard of it.
class WeightStore {
 public:
  // Maps and validates each file; throws EngineError(ModelLoad) naming the file and tensor.
  explicit WeightStore(const std::vector<std::string>& files);
  // Tensors already in memory that the caller keeps alive (benchmarks, tests); not validated
  // beyond names being unique.
  static WeightStore from_memory(std::map<std::string, TensorView> tensors);

  // The tensor, or nullptr.
  const TensorView* find(const std::string& name) const;
  // The tensor with this dtype-agnostic shape check; throws EngineError(ModelLoad) naming it.
  const TensorView& require(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  size_t mapped_bytes() const;

 private:
  WeightStore() = default;
  void add_file(const std::string& path);

  std::vector<std::unique_ptr<MappedFile>> files_;
  // Copies of tensors whose data was not aligned to their element size in the file.
  std::vector<std::unique_ptr<uint8_t[]>> aligned_copies_;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace difflm
