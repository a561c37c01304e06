// A small, strict JSON reader for safetensors headers and index files. The engine stays
// dependency-free, so it carries its own; inputs are at most a few megabytes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace difflm {

class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  // Object members in file order; keys are unique (the parser rejects duplicates).
  std::vector<std::pair<std::string, JsonValue>> object;

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  // Member by key, or nullptr.
  const JsonValue* find(const std::string& key) const;
};

// Parses `text`; throws std::runtime_error with the byte offset on malformed input.
JsonValue parse_json(const std::string& text);

}  // namespace difflm
