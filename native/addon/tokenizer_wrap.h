// N-API wrapper of a gpt2::tokenizer (the standalone Tokenizer, and a model's tokenizer) and
// of gpt2::stream_decoder. Neither constructor is reachable from JS by design: tokenizers come
// from loadTokenizer(path) (async: it reads files) or a model's tokenizer(); stream decoders
// from tokenizer.createStreamDecoder().
#pragma once

#include "tokenizer/tokenizer.h"

#include <napi.h>

#include <memory>

namespace gpt2::addon {

class TokenizerWrap : public Napi::ObjectWrap<TokenizerWrap> {
public:
    // Defines the classes and exports loadTokenizer(path): Promise<NativeTokenizer>.
    static void Init(Napi::Env env, Napi::Object exports);
    // A JS NativeTokenizer sharing `tok` (e.g. a model's tokenizer).
    static Napi::Value NewInstance(Napi::Env env, std::shared_ptr<const gpt2::tokenizer> tok);

    explicit TokenizerWrap(const Napi::CallbackInfo & info);

    const std::shared_ptr<const gpt2::tokenizer> & tokenizer() const { return tok_; }

private:
    static Napi::Value Load(const Napi::CallbackInfo & info);

    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value TokenizeAsync(const Napi::CallbackInfo & info);
    Napi::Value CountTokens(const Napi::CallbackInfo & info);
    Napi::Value Detokenize(const Napi::CallbackInfo & info);
    Napi::Value TokenBytes(const Napi::CallbackInfo & info);
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value CreateStreamDecoder(const Napi::CallbackInfo & info);

    std::shared_ptr<const gpt2::tokenizer> tok_;
};

class StreamDecoderWrap : public Napi::ObjectWrap<StreamDecoderWrap> {
public:
    static Napi::Function Define(Napi::Env env);
    explicit StreamDecoderWrap(const Napi::CallbackInfo & info);

private:
    Napi::Value Push(const Napi::CallbackInfo & info);
    Napi::Value Flush(const Napi::CallbackInfo & info);

    std::shared_ptr<const gpt2::tokenizer> tok_;
    std::unique_ptr<gpt2::stream_decoder>  dec_;
};

}   // namespace gpt2::addon
