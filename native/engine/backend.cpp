#include "backend.h"

#include "cpu/cpu_backend.h"
#include "cuda_entry.h"
#include "errors.h"

namespace difflm {

std::unique_ptr<Backend> make_backend(const std::string& device, int threads) {
  if (device == "cpu") return std::make_unique<CpuBackend>(threads);
  if (device == "cuda") return make_cuda_backend(0);
  throw EngineError(ErrorCode::InvalidArgument, "unknown device \"" + device + "\"");
}

}  // namespace difflm
