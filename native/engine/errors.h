// Engine errors: one exception type carrying a code that the addon maps to a typed JS error.
#pragma once

#include <stdexcept>
#include <string>

namespace difflm {

enum class ErrorCode {
  ModelLoad,        // weights missing, corrupt, truncated, or disagreeing with the spec
  InvalidArgument,  // an argument that lib/ should have rejected
  Aborted,          // the caller's cancel flag was set
  OutOfMemory,      // an allocation failed
  Disposed,         // the model was released
  Internal,         // a bug
};

const char* error_code_name(ErrorCode code);

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace difflm
