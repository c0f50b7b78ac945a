// Turning native failures into JS errors: gpt2::error keeps its code (the TS layer wraps it
// in Gpt2Error), argument errors become TypeError / RangeError, a RangeError with the code
// ERR_OUT_OF_RANGE. Also the argument-check macros that throw and return at once, so no code
// runs after a failed check.
#pragma once

#include "util/error.h"

#include <napi.h>

namespace gpt2::addon {

Napi::Error to_js_error(Napi::Env env, const std::string & code, const std::string & message, error_kind kind = error_kind::coded);
Napi::Error to_js_error(Napi::Env env, const std::exception & e);

// Throw a TypeError / a RangeError (code ERR_OUT_OF_RANGE) and return false, for the readers
// that report failure to their caller.
bool throw_type(Napi::Env env, const std::string & message);
bool throw_range(Napi::Env env, const std::string & message);

// Runs an async worker's completion (its OnOK / OnError body), which settles `deferred`. While
// the environment is being torn down (a worker thread terminated while the job ran), calls into
// JS fail and node-addon-api throws; thrown out of a completion, it is thrown again from a C
// callback and std::terminate ends the whole process. Here a throw rejects the promise instead,
// and where even that fails (nobody can await the promise any more) it is dropped.
template <typename F> void settle(Napi::Promise::Deferred & deferred, F && body) noexcept {
    try {
        body();
    } catch (const Napi::Error & e) {
        try {
            deferred.Reject(e.Value());
        } catch (...) {}   // the environment is going away
    } catch (...) {}
}

}   // namespace gpt2::addon

// Throw a JS TypeError / RangeError / coded Error and return from the calling N-API method.
#define GPT2_THROW_TYPE(env, msg)                                                                                                          \
    do {                                                                                                                                   \
        gpt2::addon::throw_type((env), (msg));                                                                                             \
        return Napi::Value();                                                                                                              \
    } while (0)
#define GPT2_THROW_RANGE(env, msg)                                                                                                         \
    do {                                                                                                                                   \
        gpt2::addon::throw_range((env), (msg));                                                                                            \
        return Napi::Value();                                                                                                              \
    } while (0)
#define GPT2_THROW_CODE(env, code, msg)                                                                                                    \
    do {                                                                                                                                   \
        gpt2::addon::to_js_error((env), (code), (msg)).ThrowAsJavaScriptException();                                                       \
        return Napi::Value();                                                                                                              \
    } while (0)
