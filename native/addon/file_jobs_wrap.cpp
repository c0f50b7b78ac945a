#include "addon/file_jobs_wrap.h"

#include "addon/errors.h"
#include "gpt/convert.h"
#include "io/quantize.h"

#include <atomic>
#include <memory>
#include <new>

namespace gpt2::addon {

namespace {

struct progress_t {
    uint64_t done, total;
};
using progress_fn = std::function<void(uint64_t, uint64_t)>;
using result_fn   = std::function<Napi::Value(Napi::Env)>;   // builds the result on the JS thread
// The job itself, run on a pool thread; returns the result builder.
using job_fn = std::function<result_fn(const progress_fn &, const std::function<bool()> &)>;

class file_job : public Napi::AsyncProgressWorker<progress_t> {
public:
    file_job(Napi::Env env, const char * name, job_fn job, Napi::Function on_progress, std::shared_ptr<std::atomic<bool>> cancel)
        : Napi::AsyncProgressWorker<progress_t>(env, name), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)),
          cancel_(std::move(cancel)) {
        if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
    }
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute(const ExecutionProgress & progress) override {
        try {
            result_ = job_(
                [&](uint64_t done, uint64_t total) {
                    progress_t p{ done, total };
                    progress.Send(&p, 1);
                },
                [this] { return cancel_->load(); });
        } catch (const gpt2::error & e) {
            code_    = e.code();
            message_ = e.what();
            kind_    = e.kind();
        } catch (const std::bad_alloc &) {
            code_    = codes::out_of_memory;
            message_ = "out of memory";
        } catch (const std::exception & e) {
            code_    = codes::internal;
            message_ = e.what();
        }
    }

    void OnProgress(const progress_t * p, size_t n) override {
        if (on_progress_.IsEmpty() || n == 0) return;
        Napi::Env env = Env();
        try {
            on_progress_.Call({ Napi::Number::New(env, (double) p[n - 1].done), Napi::Number::New(env, (double) p[n - 1].total) });
        } catch (const Napi::Error &) {
            // a throwing progress callback must not lose the job; the error is dropped
        }
    }

    void OnOK() override {
        settle(deferred_, [&] {
            Napi::Env env = Env();
            if (!code_.empty()) deferred_.Reject(to_js_error(env, code_, message_, kind_).Value());
            else deferred_.Resolve(result_(env));
        });
    }

    void OnError(const Napi::Error & e) override {
        settle(deferred_, [&] { deferred_.Reject(e.Value()); });
    }

private:
    Napi::Promise::Deferred            deferred_;
    Napi::FunctionReference            on_progress_;
    job_fn                             job_;
    std::shared_ptr<std::atomic<bool>> cancel_;
    result_fn                          result_;
    std::string                        code_, message_;
    error_kind                         kind_ = error_kind::coded;
};

// Checks (input, output, type, onProgress?) and starts the job: { promise, cancel }.
Napi::Value start(const Napi::CallbackInfo & info, const char * signature, const char * name,
                  const std::function<job_fn(std::string, std::string, std::string)> & make) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString() ||
        (info.Length() > 3 && !info[3].IsFunction() && !info[3].IsUndefined())) {
        GPT2_THROW_TYPE(env, signature);
    }
    Napi::Function cb     = info.Length() > 3 && info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
    auto           cancel = std::make_shared<std::atomic<bool>>(false);
    auto *         w      = new file_job(
        env, name,
        make(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), info[2].As<Napi::String>().Utf8Value()), cb,
        cancel);
    Napi::Object o = Napi::Object::New(env);
    o.Set("promise", w->promise());
    o.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo &) { cancel->store(true); }, "cancel"));
    w->Queue();
    return o;
}

Napi::Value quantize(const Napi::CallbackInfo & info) {
    return start(info, "quantize(input: string, output: string, type: string, onProgress?: function)", "gpt2-node:quantize",
                 [](std::string in, std::string out, std::string type) -> job_fn {
                     return [=](const progress_fn & progress, const std::function<bool()> & cancelled) -> result_fn {
                         const quantize_result r = quantize_gguf(in, out, type, progress, cancelled);
                         return [r](Napi::Env env) -> Napi::Value {
                             Napi::Object o = Napi::Object::New(env);
                             o.Set("converted", (double) r.n_converted);
                             o.Set("kept", (double) r.n_kept);
                             o.Set("bytesIn", (double) r.bytes_in);
                             o.Set("bytesOut", (double) r.bytes_out);
                             return o;
                         };
                     };
                 });
}

Napi::Value convert(const Napi::CallbackInfo & info) {
    return start(info, "convert(input: string, output: string, type: string, onProgress?: function)", "gpt2-node:convert",
                 [](std::string in, std::string out, std::string type) -> job_fn {
                     return [=](const progress_fn & progress, const std::function<bool()> & cancelled) -> result_fn {
                         const convert_result r = convert_model(in, out, type, progress, cancelled);
                         return [r](Napi::Env env) -> Napi::Value {
                             Napi::Object o = Napi::Object::New(env);
                             o.Set("formatIn", r.format_in);
                             o.Set("tensors", (double) r.n_tensors);
                             o.Set("converted", (double) r.n_converted);
                             o.Set("bytesOut", (double) r.bytes_out);
                             return o;
                         };
                     };
                 });
}

Napi::Value quantize_types(const Napi::CallbackInfo & info) {
    Napi::Env    env   = info.Env();
    const auto & names = quantize_type_names();
    Napi::Array  a     = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) a.Set((uint32_t) i, names[i]);
    return a;
}

}   // namespace

void file_jobs_init(Napi::Env env, Napi::Object exports) {
    exports.Set("quantize", Napi::Function::New(env, quantize, "quantize"));
    exports.Set("convert", Napi::Function::New(env, convert, "convert"));
    exports.Set("quantizeTypes", Napi::Function::New(env, quantize_types, "quantizeTypes"));
}

}   // namespace gpt2::addon
