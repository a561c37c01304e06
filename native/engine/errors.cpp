#include "errors.h"

namespace difflm {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::ModelLoad: return "DIFFLM_MODEL_LOAD";
    case ErrorCode::InvalidArgument: return "DIFFLM_INVALID_ARGUMENT";
    case ErrorCode::Aborted: return "DIFFLM_ABORTED";
    case ErrorCode::OutOfMemory: return "DIFFLM_OUT_OF_MEMORY";
    case ErrorCode::Disposed: return "DIFFLM_DISPOSED";
    case ErrorCode::Internal: return "DIFFLM_INTERNAL";
  }
  return "DIFFLM_INTERNAL";
}

}  // namespace difflm
