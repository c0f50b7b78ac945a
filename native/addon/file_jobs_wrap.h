// Long file jobs off the JS thread, each with progress and cancellation:
//   quantize(input, output, type, onProgress?) → { promise: Promise<{ converted, kept, bytesIn, bytesOut }>, cancel() }
//   convert(input, output, type, onProgress?)  → { promise: Promise<{ formatIn, tensors, converted, bytesOut }>, cancel() }
//   quantizeTypes() → string[]
#pragma once

#include <napi.h>

namespace gpt2::addon {

void file_jobs_init(Napi::Env env, Napi::Object exports);

}   // namespace gpt2::addon
