// getDevices() → Promise<Array<{ id, name, description, backend, type, memoryFree, memoryTotal }>>,
// enumerated off the JS thread (the first enumeration initializes the GPU drivers).
#pragma once

#include <napi.h>

namespace gpt2::addon {

void devices_init(Napi::Env env, Napi::Object exports);

}   // namespace gpt2::addon
