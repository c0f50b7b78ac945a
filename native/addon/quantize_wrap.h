// quantize(input, output, type, onProgress?) → Promise<{ converted, kept, bytesIn, bytesOut }>,
// run on a pool thread with progress reported back to the JS thread.
#pragma once

#include <napi.h>

namespace gpt2::addon {

void quantize_init(Napi::Env env, Napi::Object exports);

} // namespace gpt2::addon
