#include "addon/tokenizer_js.h"

#include "addon/errors.h"
#include "tokenizer/unicode.h"

#include <cmath>
#include <cstring>
#include <new>

namespace gpt2::addon {

// Mirrors lib/validate.ts describe(): how a received value reads in a message; `typed` adds
// the type to numbers too (for type errors).
std::string describe(const Napi::Value & v, bool typed) {
    if (v.IsString()) {
        // at most the first 160 bytes: the value may be a 100 MB string
        char   buf[161];
        size_t len = 0;
        napi_get_value_string_utf8(v.Env(), v, buf, sizeof(buf), &len);
        std::string s(buf, len);
        bool        cut = false;
        if (s.size() > 40) {
            size_t end = 40;
            while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) { --end; }
            s.resize(end);
            cut = true;
        }
        std::string q = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') {
                q += '\\';
                q += c;
            } else if (c == '\n') {
                q += "\\n";
            } else if (c == '\t') {
                q += "\\t";
            } else if (c == '\r') {
                q += "\\r";
            } else {
                q += c;
            }
        }
        if (cut) { q += "\xE2\x80\xA6"; }
        return q + "\" of type string";
    }
    if (v.IsNumber()) {
        std::string n = v.ToString().Utf8Value();   // JS number formatting
        return typed ? n + " of type number" : n;
    }
    if (v.IsNull()) { return "null"; }
    if (v.IsArray()) { return "an array"; }
    if (v.IsObject() && !v.IsFunction()) {
        std::string name = "Object";
        Napi::Value ctor = v.As<Napi::Object>().Get("constructor");
        if (ctor.IsFunction()) {
            Napi::Value n = ctor.As<Napi::Object>().Get("name");
            if (n.IsString()) { name = n.As<Napi::String>().Utf8Value(); }
        }
        return "an object of type " + name;
    }
    std::string type = v.IsUndefined() ? "undefined"
        : v.IsBoolean()                ? "boolean"
        : v.IsFunction()               ? "function"
        : v.IsBigInt()                 ? "bigint"
        : v.IsSymbol()                 ? "symbol"
                                       : "unknown";
    std::string text = v.IsSymbol() ? "Symbol()" : v.IsFunction() ? "function" : v.ToString().Utf8Value();
    return text + " of type " + type;
}

namespace {

Napi::Value throw_native(Napi::Env env, const std::exception & e) {
    if (dynamic_cast<const std::bad_alloc *>(&e) != nullptr) {
        to_js_error(env, codes::out_of_memory, "out of memory while tokenizing").ThrowAsJavaScriptException();
    } else {
        to_js_error(env, e).ThrowAsJavaScriptException();
    }
    return Napi::Value();
}

}   // namespace

bool read_text(Napi::Env env, const Napi::Value & v, const char * name, std::string & out) {
    if (!v.IsString()) { return throw_type(env, std::string("Expected string for ") + name + " but received " + describe(v, true)); }
    out = v.As<Napi::String>().Utf8Value();
    return true;
}

bool read_token_id(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok, uint32_t & out) {
    const uint32_t n_vocab = tok.n_vocab();
    if (!v.IsNumber()) { return throw_type(env, expected_integer(name, 0, n_vocab - 1, describe(v))); }
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d < n_vocab) || d != std::floor(d)) { return throw_range(env, expected_integer(name, 0, n_vocab - 1, describe(v))); }
    out = static_cast<uint32_t>(d);
    return true;
}

bool read_token_ids(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok, std::vector<uint32_t> & out) {
    const uint32_t * data = nullptr;
    size_t           n    = 0;
    if (!read_token_ids_view(env, v, name, tok, data, n, out)) { return false; }
    if (data != out.data()) { out.assign(data, data + n); }
    return true;
}

bool read_token_ids_view(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok, const uint32_t *& data,
                         size_t & n, std::vector<uint32_t> & storage) {
    const uint32_t n_vocab = tok.n_vocab();
    auto           message = [&](size_t i, const std::string & got) {
        return expected_integer(std::string(name) + "[" + std::to_string(i) + "]", 0, n_vocab - 1, got);
    };
    if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array) {
        Napi::Uint32Array a = v.As<Napi::Uint32Array>();
        n                   = a.ElementLength();
        data                = n > 0 ? a.Data() : storage.data();
        for (size_t i = 0; i < n; ++i) {
            if (data[i] >= n_vocab) { return throw_range(env, message(i, std::to_string(data[i]))); }
        }
        return true;
    }
    if (!v.IsArray()) {
        return throw_type(env,
                          std::string("Expected Uint32Array or array of token ids for ") + name + " but received " + describe(v, true));
    }
    Napi::Array a = v.As<Napi::Array>();
    n             = a.Length();
    storage.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
        Napi::Value e = a.Get(i);
        if (!e.IsNumber()) { return throw_type(env, message(i, describe(e))); }
        const double d = e.As<Napi::Number>().DoubleValue();
        if (!(d >= 0 && d < n_vocab) || d != std::floor(d)) { return throw_range(env, message(i, describe(e))); }
        storage[i] = static_cast<uint32_t>(d);
    }
    data = storage.data();
    return true;
}

bool read_allowed_special(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok,
                          std::vector<uint32_t> & out) {
    out.clear();
    if (!v.IsArray()) {
        return throw_type(env, std::string("Expected array of special token ids for ") + name + " but received " + describe(v, true));
    }
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
        Napi::Value       e       = a.Get(i);
        const std::string message = std::string("Expected special token id for ") + name + "[" + std::to_string(i) + "] but received " +
            describe(e);
        if (!e.IsNumber()) { return throw_type(env, message); }
        const double d = e.As<Napi::Number>().DoubleValue();
        if (!(d >= 0 && d < tok.n_vocab()) || d != std::floor(d) || !tok.is_special(static_cast<uint32_t>(d))) {
            return throw_range(env, message);
        }
        out.push_back(static_cast<uint32_t>(d));
    }
    return true;
}

Napi::Uint32Array ids_to_js(Napi::Env env, const std::vector<uint32_t> & ids) {
    Napi::Uint32Array a = Napi::Uint32Array::New(env, ids.size());
    if (!ids.empty()) { std::memcpy(a.Data(), ids.data(), ids.size() * sizeof(uint32_t)); }
    return a;
}

Napi::String text_to_js(Napi::Env env, std::string_view bytes) {
    // V8 makes strings from Latin-1 or UTF-16 with a copy, from UTF-8 with two decoding
    // passes; converting here once is faster (decode speed is a goal).
    std::string sanitized;
    bool        ascii = false;
    if (!gpt2::utf8_valid(bytes, &ascii)) {
        sanitized = gpt2::utf8_sanitize(bytes);
        bytes     = sanitized;
    }
    napi_value  result = nullptr;
    napi_status status;
    if (ascii) {
        status = napi_create_string_latin1(env, bytes.data(), bytes.size(), &result);
    } else {
        std::u16string u16;
        u16.resize(bytes.size());
        const auto * s = reinterpret_cast<const uint8_t *>(bytes.data());
        const size_t n = bytes.size();
        size_t       j = 0;
        for (size_t i = 0; i < n;) {
            if (i + 8 <= n) {   // 8 ASCII bytes at a time
                uint64_t w;
                std::memcpy(&w, s + i, 8);
                if ((w & 0x8080808080808080ull) == 0) {
                    for (size_t k = 0; k < 8; ++k) { u16[j + k] = s[i + k]; }
                    i += 8;
                    j += 8;
                    continue;
                }
            }
            const uint8_t c = s[i];
            if (c < 0x80) {
                u16[j++] = c;
                ++i;
                continue;
            }
            size_t         len = 1;
            const uint32_t cp  = gpt2::utf8_next(s, n, i, len);   // well-formed here
            if (cp < 0x10000) {
                u16[j++] = static_cast<char16_t>(cp);
            } else {
                u16[j++] = static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10));
                u16[j++] = static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF));
            }
            i += len;
        }
        status = napi_create_string_utf16(env, u16.data(), j, &result);
    }
    NAPI_THROW_IF_FAILED(env, status, Napi::String());
    return Napi::String(env, result);
}

// tokenize(text: string, allowedSpecial: number[]): Uint32Array
Napi::Value js_tokenize(const Napi::CallbackInfo & info, const gpt2::tokenizer & tok) {
    Napi::Env             env = info.Env();
    std::string           text;
    std::vector<uint32_t> allowed;
    if (!read_text(env, info[0], "text", text)) { return Napi::Value(); }
    if (!read_allowed_special(env, info[1], "allowedSpecial", tok, allowed)) { return Napi::Value(); }
    std::vector<uint32_t> ids;
    try {
        ids.reserve(text.size() / 3 + 16);
        tok.encode_into(text, allowed, ids);
    } catch (const std::exception & e) { return throw_native(env, e); }
    return ids_to_js(env, ids);
}

// countTokens(text: string, allowedSpecial: number[]): number
Napi::Value js_count_tokens(const Napi::CallbackInfo & info, const gpt2::tokenizer & tok) {
    Napi::Env             env = info.Env();
    std::string           text;
    std::vector<uint32_t> allowed;
    if (!read_text(env, info[0], "text", text)) { return Napi::Value(); }
    if (!read_allowed_special(env, info[1], "allowedSpecial", tok, allowed)) { return Napi::Value(); }
    size_t n = 0;
    try {
        std::vector<uint32_t> ids;
        tok.encode_into(text, allowed, ids);
        n = ids.size();
    } catch (const std::exception & e) { return throw_native(env, e); }
    return Napi::Number::New(env, static_cast<double>(n));
}

// detokenize(ids: Uint32Array | number[]): string
Napi::Value js_detokenize(const Napi::CallbackInfo & info, const gpt2::tokenizer & tok) {
    Napi::Env             env = info.Env();
    std::vector<uint32_t> storage;
    const uint32_t *      ids = nullptr;
    size_t                n   = 0;
    if (!read_token_ids_view(env, info[0], "ids", tok, ids, n, storage)) { return Napi::Value(); }
    std::string bytes;
    try {
        tok.decode_into(ids, n, bytes);
    } catch (const std::exception & e) { return throw_native(env, e); }
    return text_to_js(env, bytes);
}

}   // namespace gpt2::addon
