// setLogger(fn | null, minLevel): routes native and ggml log lines to a JS function through an
// un-referenced thread-safe function (logging never keeps the process alive). Silent by default.
#pragma once

#include <napi.h>

namespace gpt2::addon {

struct addon_data;

void log_init(Napi::Env env, Napi::Object exports);
void log_shutdown(addon_data * data);

}   // namespace gpt2::addon
