// The safetensors reader: valid single and sharded files, and every kind of corrupt, truncated
// or lying header gives a ModelLoad error naming the file and what is wrong.
#include "errors.h"
#include "json.h"
#include "safetensors.h"
#include "st_writer.h"
#include "test.h"

using namespace difflm;
using namespace difflm_test;

namespace {

std::string write_one(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  write_file(path, bytes);
  return path;
}

std::string raw_header(const std::string& json, size_t data_bytes) {
  return header_length(json.size()) + json + std::string(data_bytes, '\0');
}

}  // namespace

TEST(json_parser_accepts_valid_and_rejects_malformed) {
  JsonValue v =
      parse_json(R"({"a":[1,2.5e1,-3],"b":{"c":"x\u00e9\ud83d\ude00"},"d":true,"e":null})");
  CHECK(v.is_object());
  CHECK(v.find("a")->array.size() == 3 && v.find("a")->array[1].number == 25);
  CHECK(v.find("b")->find("c")->string == "x\xc3\xa9\xf0\x9f\x98\x80");
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "{\"a\":1,\"a\":2}", "\"\\ud800\"", "01x",
                          "{\"a\":1} x", "nul", "[1e999]"}) {
    bool threw = false;
    try {
      parse_json(bad);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    CHECK_MSG(threw, "accepted: " << bad);
  }
}

TEST(safetensors_reads_every_dtype_zero_copy) {
  const std::string dir = temp_dir();
  StTensor a = f32_tensor("a", {2, 3}, {1, 2, 3, 4, 5, 6});
  StTensor b{"b", "BF16", {3}, {0x80, 0x3f, 0x00, 0x40, 0x40, 0x40}};  // 1, 2, 3
  StTensor c{"c", "F16", {1}, {0x00, 0x3c}};                           // 1
  const std::string path = write_one(dir, "m.safetensors", safetensors_bytes({a, b, c}));
  WeightStore ws({path});
  const TensorView& ta = ws.require("a", {2, 3});
  CHECK(ta.dtype == DType::F32 && static_cast<const float*>(ta.data)[5] == 6.f);
  const TensorView& tb = ws.require("b", {3});
  CHECK(load_as_f32(tb.data, tb.dtype, 2) == 3.f);
  CHECK(load_as_f32(ws.require("c", {1}).data, DType::F16, 0) == 1.f);
  CHECK(ws.find("missing") == nullptr);
  CHECK_THROWS(ws.require("missing", {1}), ErrorCode::ModelLoad, "missing tensor 'missing'");
  CHECK_THROWS(ws.require("a", {3, 2}), ErrorCode::ModelLoad, "has shape [2, 3], expected [3, 2]");
}

TEST(safetensors_sharded_checkpoint_and_duplicate_tensor) {
  const std::string dir = temp_dir();
  auto p1 = write_one(dir, "s1.safetensors", safetensors_bytes({f32_tensor("x", {1}, {1})}));
  auto p2 = write_one(dir, "s2.safetensors", safetensors_bytes({f32_tensor("y", {2}, {2, 3})}));
  WeightStore ws({p1, p2});
  CHECK(ws.tensors().size() == 2);
  auto p3 = write_one(dir, "s3.safetensors", safetensors_bytes({f32_tensor("x", {1}, {9})}));
  CHECK_THROWS(WeightStore({p1, p3}), ErrorCode::ModelLoad, "'x' also appears in");
}

TEST(safetensors_rejects_corrupt_truncated_and_lying_files) {
  const std::string dir = temp_dir();
  struct Bad {
    const char* name;
    std::string bytes;
    const char* message;
  };
  const std::string good = safetensors_bytes({f32_tensor("w", {2, 2}, {1, 2, 3, 4})});
  const std::vector<Bad> cases = {
      {"empty", "", "truncated: 0 bytes"},
      {"short", "abc", "truncated: 3 bytes"},
      {"header_past_end", header_length(1000) + "{}", "runs past the end"},
      {"huge_header", header_length(1ull << 40), "implausibly large"},
      {"bad_json", raw_header("{\"w\":{\"dtype\":", 0), "corrupt header"},
      {"not_object", raw_header("[1,2]", 0), "not a JSON object"},
      {"unknown_dtype", raw_header(R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}})", 4),
       "unknown dtype \"Q4\""},
      {"unsupported_dtype",
       raw_header(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8),
       "dtype I64 is not supported"},
      {"size_mismatch",
       raw_header(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", 16),
       "holds 12 bytes but shape [2, 2] of F32 needs 16"},
      {"offsets_past_end",
       raw_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 16),
       "run past the end of the data"},
      {"overlap",
       raw_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  12),
       "overlap"},
      {"negative_shape",
       raw_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
       "non-negative integers"},
      {"reversed_offsets",
       raw_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4), "begin <= end"},
      {"missing_offsets", raw_header(R"({"w":{"dtype":"F32","shape":[1]}})", 4),
       "missing data_offsets"},
      {"truncated_data", good.substr(0, good.size() - 3), "run past the end of the data"},
  };
  for (const Bad& c : cases) {
    const std::string path = write_one(dir, std::string(c.name) + ".safetensors", c.bytes);
    CHECK_THROWS(WeightStore({path}), ErrorCode::ModelLoad, c.message);
    CHECK_THROWS(WeightStore({path}), ErrorCode::ModelLoad, path);
  }
  CHECK_THROWS(WeightStore({dir + "/nope.safetensors"}), ErrorCode::ModelLoad, "cannot open");
  CHECK_THROWS(WeightStore({dir}), ErrorCode::ModelLoad, "not a regular file");
}

TEST(safetensors_unaligned_data_is_copied_aligned) {
  // A header of odd length puts F32 data at an odd address; reads stay correct and aligned.
  const std::string json = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string bytes = header_length(json.size()) + json;
  const float vals[2] = {1.5f, -2.f};
  bytes.append(reinterpret_cast<const char*>(vals), 8);
  const std::string dir = temp_dir();
  WeightStore ws({write_one(dir, "u.safetensors", bytes)});
  const TensorView& t = ws.require("w", {2});
  CHECK(reinterpret_cast<uintptr_t>(t.data) % 4 == 0);
  CHECK(static_cast<const float*>(t.data)[1] == -2.f);
}
