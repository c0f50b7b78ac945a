#include "addon/log_wrap.h"

#include "addon/addon_data.h"
#include "io/gguf_reader.h"
#include "util/log.h"

#include <memory>
#include <mutex>

namespace gpt2::addon {

namespace {

struct log_line {
    log_level   level;
    std::string source, text;
};

// The one environment whose function receives log lines (logging is process-wide in ggml).
std::mutex                                g_mu;
addon_data *                              g_owner = nullptr;
std::shared_ptr<Napi::ThreadSafeFunction> g_tsfn;

void detach_locked() {
    if (g_tsfn) g_tsfn->Release();
    g_tsfn.reset();
    g_owner = nullptr;
    gpt2::log_set_sink(nullptr, log_level::error);
}

Napi::Value set_logger(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !(info[0].IsFunction() || info[0].IsNull() || info[0].IsUndefined())) {
        Napi::TypeError::New(env, "setLogger(fn: function | null, minLevel?: number)").ThrowAsJavaScriptException();
        return Napi::Value();
    }
    int level = 0;
    if (info.Length() > 1 && info[1].IsNumber()) level = info[1].As<Napi::Number>().Int32Value();
    std::lock_guard<std::mutex> lock(g_mu);
    detach_locked();
    if (!info[0].IsFunction()) return env.Undefined();
    auto tsfn = std::make_shared<Napi::ThreadSafeFunction>(
        Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "gpt2-node:log", 1024, 1));
    tsfn->Unref(env);
    g_tsfn  = tsfn;
    g_owner = &data_of(env);
    gpt2::ggml_log_capture_install();
    gpt2::log_set_sink(
        [tsfn](log_level lvl, const std::string & source, const std::string & text) {
            auto *      line = new log_line{ lvl, source, text };
            napi_status st   = tsfn->NonBlockingCall(line, [](Napi::Env env, Napi::Function fn, log_line * l) {
                std::unique_ptr<log_line> owned(l);
                if (!env || !fn) return;
                try {
                    fn.Call({ Napi::Number::New(env, (int) l->level), Napi::String::New(env, l->source), Napi::String::New(env, l->text) });
                } catch (const Napi::Error &) {
                    // a throwing logger, or an environment being torn down: drop the line, never abort
                }
            });
            if (st != napi_ok) delete line;   // queue full or closing: drop the line
        },
        (log_level) std::max(0, std::min(level, 3)));
    return env.Undefined();
}

}   // namespace

void log_init(Napi::Env env, Napi::Object exports) { exports.Set("setLogger", Napi::Function::New(env, set_logger, "setLogger")); }

void log_shutdown(addon_data * data) {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_owner == data) detach_locked();
}

}   // namespace gpt2::addon
