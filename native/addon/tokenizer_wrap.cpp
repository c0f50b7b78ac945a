#include "addon/tokenizer_wrap.h"

#include "addon/addon_data.h"
#include "addon/errors.h"
#include "addon/tokenizer_js.h"
#include "util/error.h"
#include "util/pages.h"

#include <cstring>
#include <new>

namespace gpt2::addon {

namespace {

using tokenizer_ptr = std::shared_ptr<const gpt2::tokenizer>;

// Native failure -> (code, message, kind), captured off the JS thread.
struct failure {
    std::string code;
    std::string message;
    error_kind  kind = error_kind::coded;

    void capture(const std::exception & e, const char * default_code) {
        if (auto * ge = dynamic_cast<const gpt2::error *>(&e)) {
            code = ge->code();
            kind = ge->kind();
        } else if (dynamic_cast<const std::bad_alloc *>(&e) != nullptr) {
            code = codes::out_of_memory;
        } else {
            code = default_code;
        }
        message = e.what();
    }
};

// loadTokenizer(path): reads and parses off the JS thread.
class load_worker : public Napi::AsyncWorker {
public:
    load_worker(Napi::Env env, std::string path)
        : Napi::AsyncWorker(env, "gpt2-node:loadTokenizer"), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)) {}
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            tok_ = gpt2::tokenizer::from_file(path_);
        } catch (const std::exception & e) { fail_.capture(e, codes::bad_model); } catch (...) {
            fail_.code    = codes::internal;
            fail_.message = "unknown error while loading the tokenizer";
        }
        gpt2::pages::release_free_heap();   // the parse's temporaries, freed on this pool thread
    }

    void OnOK() override {
        settle(deferred_, [&] {
            Napi::Env env = Env();
            if (!fail_.code.empty()) {
                deferred_.Reject(to_js_error(env, fail_.code, fail_.message, fail_.kind).Value());
                return;
            }
            deferred_.Resolve(TokenizerWrap::NewInstance(env, tok_));
        });
    }

    void OnError(const Napi::Error & e) override {
        settle(deferred_, [&] { deferred_.Reject(e.Value()); });
    }

private:
    Napi::Promise::Deferred deferred_;
    std::string             path_;
    tokenizer_ptr           tok_;
    failure                 fail_;
};

// tokenizeAsync: the text is copied into the worker; ids are copied into a JS-owned array on
// the JS thread. The worker holds the tokenizer itself (shared_ptr), not the JS wrapper.
class tokenize_worker : public Napi::AsyncWorker {
public:
    tokenize_worker(Napi::Env env, tokenizer_ptr tok, std::string text, std::vector<uint32_t> allowed)
        : Napi::AsyncWorker(env, "gpt2-node:tokenize"), deferred_(Napi::Promise::Deferred::New(env)), tok_(std::move(tok)),
          text_(std::move(text)), allowed_(std::move(allowed)) {}
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            ids_.reserve(text_.size() / 3 + 16);
            tok_->encode_into(text_, allowed_, ids_);
        } catch (const std::exception & e) { fail_.capture(e, codes::internal); } catch (...) {
            fail_.code    = codes::internal;
            fail_.message = "unknown error while tokenizing";
        }
        std::string().swap(text_);
    }

    void OnOK() override {
        settle(deferred_, [&] {
            Napi::Env env = Env();
            if (!fail_.code.empty()) {
                deferred_.Reject(to_js_error(env, fail_.code, fail_.message, fail_.kind).Value());
                return;
            }
            deferred_.Resolve(ids_to_js(env, ids_));
        });
    }

    void OnError(const Napi::Error & e) override {
        settle(deferred_, [&] { deferred_.Reject(e.Value()); });
    }

private:
    Napi::Promise::Deferred deferred_;
    tokenizer_ptr           tok_;
    std::string             text_;
    std::vector<uint32_t>   allowed_;
    std::vector<uint32_t>   ids_;
    failure                 fail_;
};

bool is_constructing_from_native(const Napi::CallbackInfo & info) { return info.Length() == 1 && info[0].IsExternal(); }

}   // namespace

// ---- TokenizerWrap ---------------------------------------------------------------------------

void TokenizerWrap::Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeTokenizer",
                                      {
                                          InstanceMethod<&TokenizerWrap::Tokenize>("tokenize"),
                                          InstanceMethod<&TokenizerWrap::TokenizeAsync>("tokenizeAsync"),
                                          InstanceMethod<&TokenizerWrap::CountTokens>("countTokens"),
                                          InstanceMethod<&TokenizerWrap::Detokenize>("detokenize"),
                                          InstanceMethod<&TokenizerWrap::TokenBytes>("tokenBytes"),
                                          InstanceMethod<&TokenizerWrap::Info>("info"),
                                          InstanceMethod<&TokenizerWrap::CreateStreamDecoder>("createStreamDecoder"),
                                      });
    // The stream decoder class hangs off the (unexported) tokenizer class, which addon_data keeps.
    ctor.Set("StreamDecoder", StreamDecoderWrap::Define(env));
    data_of(env).tokenizer_ctor = Napi::Persistent(ctor);
    exports.Set("loadTokenizer", Napi::Function::New(env, &TokenizerWrap::Load, "loadTokenizer"));
}

Napi::Value TokenizerWrap::NewInstance(Napi::Env env, std::shared_ptr<const gpt2::tokenizer> tok) {
    if (!tok) {
        to_js_error(env, codes::internal, "no tokenizer").ThrowAsJavaScriptException();
        return Napi::Value();
    }
    return data_of(env).tokenizer_ctor.New({ Napi::External<tokenizer_ptr>::New(env, &tok) });
}

TokenizerWrap::TokenizerWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<TokenizerWrap>(info) {
    if (!is_constructing_from_native(info)) {
        Napi::TypeError::New(info.Env(), "NativeTokenizer cannot be constructed directly; use loadTokenizer(path)")
            .ThrowAsJavaScriptException();
        return;
    }
    tok_ = *info[0].As<Napi::External<tokenizer_ptr>>().Data();
}

Napi::Value TokenizerWrap::Load(const Napi::CallbackInfo & info) {
    Napi::Env   env = info.Env();
    std::string path;
    if (!read_text(env, info[0], "path", path)) { return Napi::Value(); }
    auto *        w = new load_worker(env, std::move(path));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

Napi::Value TokenizerWrap::Tokenize(const Napi::CallbackInfo & info) { return js_tokenize(info, *tok_); }
Napi::Value TokenizerWrap::CountTokens(const Napi::CallbackInfo & info) { return js_count_tokens(info, *tok_); }
Napi::Value TokenizerWrap::Detokenize(const Napi::CallbackInfo & info) { return js_detokenize(info, *tok_); }

Napi::Value TokenizerWrap::TokenizeAsync(const Napi::CallbackInfo & info) {
    Napi::Env             env = info.Env();
    std::string           text;
    std::vector<uint32_t> allowed;
    if (!read_text(env, info[0], "text", text)) { return Napi::Value(); }
    if (!read_allowed_special(env, info[1], "allowedSpecial", *tok_, allowed)) { return Napi::Value(); }
    auto *        w = new tokenize_worker(env, tok_, std::move(text), std::move(allowed));
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

// tokenBytes(id: number): Uint8Array (a JS-owned copy)
Napi::Value TokenizerWrap::TokenBytes(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    uint32_t  id  = 0;
    if (!read_token_id(env, info[0], "id", *tok_, id)) { return Napi::Value(); }
    const std::string_view b = tok_->token_bytes(id);
    Napi::Uint8Array       a = Napi::Uint8Array::New(env, b.size());
    if (!b.empty()) { std::memcpy(a.Data(), b.data(), b.size()); }
    return a;
}

// info(): { vocabSize, eosTokenId, specialTokens: { [text]: id } }
Napi::Value TokenizerWrap::Info(const Napi::CallbackInfo & info) {
    Napi::Env    env = info.Env();
    Napi::Object o   = Napi::Object::New(env);
    o.Set("vocabSize", tok_->n_vocab());
    o.Set("eosTokenId", tok_->eos_id());
    Napi::Object special = Napi::Object::New(env);
    for (uint32_t id : tok_->special_ids()) { special.Set(text_to_js(env, tok_->token_bytes(id)), id); }
    o.Set("specialTokens", special);
    return o;
}

Napi::Value TokenizerWrap::CreateStreamDecoder(const Napi::CallbackInfo & info) {
    Napi::Env      env  = info.Env();
    Napi::Function ctor = data_of(env).tokenizer_ctor.Value().Get("StreamDecoder").As<Napi::Function>();
    return ctor.New({ Napi::External<tokenizer_ptr>::New(env, &tok_) });
}

// ---- StreamDecoderWrap -----------------------------------------------------------------------

Napi::Function StreamDecoderWrap::Define(Napi::Env env) {
    return DefineClass(env, "NativeStreamDecoder",
                       {
                           InstanceMethod<&StreamDecoderWrap::Push>("push"),
                           InstanceMethod<&StreamDecoderWrap::Flush>("flush"),
                       });
}

StreamDecoderWrap::StreamDecoderWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<StreamDecoderWrap>(info) {
    if (!is_constructing_from_native(info)) {
        Napi::TypeError::New(info.Env(), "NativeStreamDecoder cannot be constructed directly; use tokenizer.createStreamDecoder()")
            .ThrowAsJavaScriptException();
        return;
    }
    tok_ = *info[0].As<Napi::External<tokenizer_ptr>>().Data();
    dec_ = std::make_unique<gpt2::stream_decoder>(tok_);
}

// push(id: number): string; push(ids: Uint32Array | number[]): string
Napi::Value StreamDecoderWrap::Push(const Napi::CallbackInfo & info) {
    Napi::Env             env = info.Env();
    std::vector<uint32_t> ids;
    if (info[0].IsNumber()) {
        uint32_t id = 0;
        if (!read_token_id(env, info[0], "id", *tok_, id)) { return Napi::Value(); }
        ids.push_back(id);
    } else if (!read_token_ids(env, info[0], "ids", *tok_, ids)) {
        return Napi::Value();
    }
    std::string out;
    for (uint32_t id : ids) { out += dec_->push(id); }
    return Napi::String::New(env, out.data(), out.size());
}

Napi::Value StreamDecoderWrap::Flush(const Napi::CallbackInfo & info) {
    const std::string out = dec_->flush();
    return Napi::String::New(info.Env(), out.data(), out.size());
}

}   // namespace gpt2::addon
