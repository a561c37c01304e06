// Kernel benchmark hooks (exported as `bench` on the addon); used by bench/ only.
#pragma once

#include <napi.h>

namespace difflm_addon {

Napi::Object bench_exports(Napi::Env env);

}  // namespace difflm_addon
