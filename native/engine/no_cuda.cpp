// Stand-ins for the CUDA entry points in builds without CUDA (see cuda_entry.h). CMake compiles
// this file only when the CUDA backend is not built.
#include "cuda_entry.h"
#include "errors.h"

namespace difflm {

bool cuda_built() {
  return false;
}

std::vector<CudaDeviceInfo> cuda_devices(std::string* why, bool) {
  if (why) *why = "this build of difflm has no CUDA backend (built without nvcc)";
  return {};
}

std::unique_ptr<Backend> make_cuda_backend(int) {
  throw EngineError(ErrorCode::InvalidArgument,
                    "device \"cuda\": this build of difflm has no CUDA backend (built without "
                    "nvcc); use device \"cpu\" or rebuild where the CUDA toolkit is installed");
}

}  // namespace difflm
