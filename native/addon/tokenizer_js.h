// JS <-> C++ conversions for the tokenizer, shared by TokenizerWrap and ModelWrap: reading a
// text argument, token id arrays (validated against the vocabulary) and allowed special
// tokens, and making JS-owned Uint32Array / string results. Each read_* function checks the
// value's type before converting it; on bad input it throws a JS TypeError/RangeError and
// returns false, and the caller must return at once.
#pragma once

#include "tokenizer/tokenizer.h"

#include <napi.h>

#include <string>
#include <string_view>
#include <vector>

namespace gpt2::addon {

// How a received value reads in a message, as lib/validate.ts describe() writes it.
std::string describe(const Napi::Value & v, bool typed = false);

// A JS string as UTF-8 (lone surrogates become U+FFFD, as in TextEncoder).
bool read_text(Napi::Env env, const Napi::Value & v, const char * name, std::string & out);

// One token id: an integer in [0, n_vocab).
bool read_token_id(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok, uint32_t & out);

// Token ids: a Uint32Array or an array of numbers, each an integer in [0, n_vocab).
// Message shape: "Expected integer between 0 and 50256 for ids[3] but received 70000".
bool read_token_ids(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok, std::vector<uint32_t> & out);

// The same without copying a Uint32Array: `data` points into it (valid until JS runs again)
// or into `storage` (for an array).
bool read_token_ids_view(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok, const uint32_t *& data,
                         size_t & n, std::vector<uint32_t> & storage);

// Allowed special tokens: an array of special token ids (empty: none).
bool read_allowed_special(Napi::Env env, const Napi::Value & v, const char * name, const gpt2::tokenizer & tok,
                          std::vector<uint32_t> & out);

// A JS-owned Uint32Array holding a copy of ids (no external buffers: Electron's V8 sandbox).
Napi::Uint32Array ids_to_js(Napi::Env env, const std::vector<uint32_t> & ids);

// Bytes to a JS string; ill-formed UTF-8 becomes U+FFFD as TextDecoder would.
Napi::String text_to_js(Napi::Env env, std::string_view bytes);

// Encodes / decodes with the conversions above; return an empty value after throwing.
// ModelWrap can use these with the model's shared tokenizer.
Napi::Value js_tokenize(const Napi::CallbackInfo & info, const gpt2::tokenizer & tok);
Napi::Value js_count_tokens(const Napi::CallbackInfo & info, const gpt2::tokenizer & tok);
Napi::Value js_detokenize(const Napi::CallbackInfo & info, const gpt2::tokenizer & tok);

}   // namespace gpt2::addon
