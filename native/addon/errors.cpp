#include "addon/errors.h"

namespace gpt2::addon {

Napi::Error to_js_error(Napi::Env env, const std::string & code, const std::string & message, error_kind kind) {
    Napi::Error err = kind == error_kind::type ? Napi::TypeError::New(env, message)
        : kind == error_kind::range            ? Napi::RangeError::New(env, message)
                                               : Napi::Error::New(env, message);
    err.Set("code", Napi::String::New(env, code));
    return err;
}

Napi::Error to_js_error(Napi::Env env, const std::exception & e) {
    if (auto * ge = dynamic_cast<const gpt2::error *>(&e)) return to_js_error(env, ge->code(), ge->what(), ge->kind());
    return to_js_error(env, codes::internal, e.what());
}

bool throw_type(Napi::Env env, const std::string & message) {
    Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
    return false;
}

bool throw_range(Napi::Env env, const std::string & message) {
    to_js_error(env, codes::out_of_range, message, error_kind::range).ThrowAsJavaScriptException();
    return false;
}

}   // namespace gpt2::addon
