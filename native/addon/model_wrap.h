// JS object for a loaded model and its engine. Created by loadModel() (async: the file is
// mapped and checked on a pool thread). Generation requests go to the engine; their tokens come
// back through one thread-safe function call per engine step.
#pragma once

#include "engine/engine.h"
#include "gpt/model.h"

#include <napi.h>

#include <atomic>
#include <memory>
#include <unordered_map>

namespace gpt2::addon {

// What the engine thread and the JS thread share: the engine, and the thread-safe function the
// engine pokes (at most one poke in flight; the JS side drains every queued event per call).
class ModelWrap;

struct model_state : std::enable_shared_from_this<model_state> {
    std::shared_ptr<const model> mdl;
    std::shared_ptr<engine>      eng;   // shared with a dispose() in flight (see dispose_worker)
    Napi::ThreadSafeFunction     tsfn;
    std::atomic<bool>            ready{ false };
    std::atomic<bool>            poke_pending{ false };
    ModelWrap *                  owner = nullptr;   // JS thread only; null once the wrapper is gone
    void                         poke();
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
public:
    static void Init(Napi::Env env, Napi::Object exports);
    explicit ModelWrap(const Napi::CallbackInfo & info);
    ~ModelWrap() override;

    // Environment teardown: stop the engine thread without calling into JS.
    void shutdown();

    // On the JS thread: hand the engine's queued events to JS.
    void deliver(Napi::Env env);

private:
    static Napi::Value Load(const Napi::CallbackInfo & info);
    Napi::Value        Info(const Napi::CallbackInfo & info);
    Napi::Value        Tokenizer(const Napi::CallbackInfo & info);
    Napi::Value        Submit(const Napi::CallbackInfo & info);
    Napi::Value        Grant(const Napi::CallbackInfo & info);
    Napi::Value        Cancel(const Napi::CallbackInfo & info);
    Napi::Value        Stats(const Napi::CallbackInfo & info);
    Napi::Value        Dispose(const Napi::CallbackInfo & info);

    bool check_alive(Napi::Env env);
    bool read_speculation(Napi::Env env, Napi::Object o, speculation_params & sp);

    friend class load_worker;
    friend class dispose_worker;

    std::shared_ptr<model_state>                           state_;
    Napi::FunctionReference                                on_events_;
    std::unordered_map<uint64_t, std::shared_ptr<request>> requests_;
    uint64_t                                               next_id_  = 1;
    bool                                                   disposed_ = false;
    bool                                                   tsfn_ref_ = false;
};

}   // namespace gpt2::addon
