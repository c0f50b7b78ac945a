// Turning native failures into JS errors: gpt2::error keeps its code (the TS layer wraps it
// in Gpt2Error), argument errors become TypeError / RangeError. Also the argument-check macros
// that throw and return at once, so no code runs after a failed check.
#pragma once

#include "util/error.h"

#include <napi.h>

namespace gpt2::addon {

Napi::Error to_js_error(Napi::Env env, const std::string & code, const std::string & message, error_kind kind = error_kind::coded);
Napi::Error to_js_error(Napi::Env env, const std::exception & e);

} // namespace gpt2::addon

// Throw a JS TypeError and return from the calling N-API method.
#define GPT2_THROW_TYPE(env, msg)  do { Napi::TypeError::New((env), (msg)).ThrowAsJavaScriptException(); return Napi::Value(); } while (0)
#define GPT2_THROW_RANGE(env, msg) do { Napi::RangeError::New((env), (msg)).ThrowAsJavaScriptException(); return Napi::Value(); } while (0)
#define GPT2_THROW_CODE(env, code, msg) do { gpt2::addon::to_js_error((env), (code), (msg)).ThrowAsJavaScriptException(); return Napi::Value(); } while (0)
