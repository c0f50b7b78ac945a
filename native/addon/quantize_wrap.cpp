#include "addon/quantize_wrap.h"

#include "addon/errors.h"
#include "io/quantize.h"

namespace gpt2::addon {

namespace {

struct progress_t { uint64_t done, total; };

class quantize_worker : public Napi::AsyncProgressWorker<progress_t> {
public:
    quantize_worker(Napi::Env env, std::string in, std::string out, std::string type, Napi::Function on_progress)
        : Napi::AsyncProgressWorker<progress_t>(env, "gpt2-node:quantize"), deferred_(Napi::Promise::Deferred::New(env)),
          in_(std::move(in)), out_(std::move(out)), type_(std::move(type)) {
        if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
    }
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute(const ExecutionProgress & progress) override {
        try {
            res_ = quantize_gguf(in_, out_, type_, [&](uint64_t done, uint64_t total) {
                progress_t p { done, total };
                progress.Send(&p, 1);
            }, nullptr);
        } catch (const gpt2::error & e) {
            code_ = e.code(); message_ = e.what(); kind_ = e.kind();
        } catch (const std::exception & e) {
            code_ = "ERR_INTERNAL"; message_ = e.what();
        }
    }

    void OnProgress(const progress_t * p, size_t n) override {
        if (on_progress_.IsEmpty() || n == 0) return;
        Napi::Env env = Env();
        try {
            on_progress_.Call({ Napi::Number::New(env, (double) p[n - 1].done), Napi::Number::New(env, (double) p[n - 1].total) });
        } catch (const Napi::Error &) {
            // a throwing progress callback must not lose the quantization; the error is dropped
        }
    }

    void OnOK() override {
        Napi::Env env = Env();
        if (!code_.empty()) {
            deferred_.Reject(to_js_error(env, code_, message_, kind_).Value());
            return;
        }
        Napi::Object o = Napi::Object::New(env);
        o.Set("converted", (double) res_.n_converted);
        o.Set("kept", (double) res_.n_kept);
        o.Set("bytesIn", (double) res_.bytes_in);
        o.Set("bytesOut", (double) res_.bytes_out);
        deferred_.Resolve(o);
    }

    void OnError(const Napi::Error & e) override { deferred_.Reject(e.Value()); }

private:
    Napi::Promise::Deferred deferred_;
    Napi::FunctionReference on_progress_;
    std::string             in_, out_, type_;
    quantize_result         res_;
    std::string             code_, message_;
    error_kind              kind_ = error_kind::coded;
};

Napi::Value quantize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString() ||
        (info.Length() > 3 && !info[3].IsFunction() && !info[3].IsUndefined())) {
        GPT2_THROW_TYPE(env, "quantize(input: string, output: string, type: string, onProgress?: function)");
    }
    Napi::Function cb = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
    auto * w = new quantize_worker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(),
                                   info[2].As<Napi::String>().Utf8Value(), cb);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

Napi::Value quantize_types(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & names = quantize_type_names();
    Napi::Array a = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) a.Set((uint32_t) i, names[i]);
    return a;
}

} // namespace

void quantize_init(Napi::Env env, Napi::Object exports) {
    exports.Set("quantize", Napi::Function::New(env, quantize, "quantize"));
    exports.Set("quantizeTypes", Napi::Function::New(env, quantize_types, "quantizeTypes"));
}

} // namespace gpt2::addon
