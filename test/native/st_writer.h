// Writes safetensors files for tests (valid ones, and raw bytes for corrupt ones).
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace difflm_test {

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Folders made by temp_dir(), removed when the test program exits.
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    for (const std::string& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};

inline std::string temp_dir() {
  static TempDirs made;
  char tmpl[] = "/tmp/difflm-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  made.dirs.push_back(tmpl);
  return tmpl;
}

inline void write_file(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
}

inline std::string header_length(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// Header JSON and data for `tensors`, laid out back to back.
inline std::string safetensors_bytes(const std::vector<StTensor>& tensors) {
  std::string header = "{", data;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    std::string shape;
    for (size_t d = 0; d < t.shape.size(); ++d)
      shape += (d ? "," : "") + std::to_string(t.shape[d]);
    header += (i ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" + t.dtype +
              "\",\"shape\":[" + shape + "],\"data_offsets\":[" + std::to_string(data.size()) +
              "," + std::to_string(data.size() + t.bytes.size()) + "]}";
    data.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  return header_length(header.size()) + header + data;
}

inline StTensor f32_tensor(const std::string& name, std::vector<int64_t> shape,
                           const std::vector<float>& values) {
  StTensor t{name, "F32", std::move(shape), {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

}  // namespace difflm_test
