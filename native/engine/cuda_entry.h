// The engine's entry points into the CUDA backend. Defined in cuda/ when the build has CUDA, and
// by no_cuda.cpp otherwise, so engine code never needs CUDA headers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace difflm {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_bytes = 0, free_bytes = 0;
  int cc_major = 0, cc_minor = 0;
};

// Whether this binary was built with the CUDA backend.
bool cuda_built();
// Usable CUDA devices (compute capability 7.5 or newer); empty when none (or no driver). `why`
// says why when empty; otherwise it names the devices left out for their compute capability, if
// any. Free memory is queried only with `with_free_memory`: it creates a CUDA context on every
// device.
std::vector<CudaDeviceInfo> cuda_devices(std::string* why, bool with_free_memory = true);
// A backend on the usable device `index` (of cuda_devices()); throws
// EngineError(InvalidArgument) saying why when impossible.
std::unique_ptr<Backend> make_cuda_backend(int index);

}  // namespace difflm
