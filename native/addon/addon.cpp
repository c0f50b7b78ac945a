// The export table and the environment's cleanup hook; nothing else.
#include "addon/addon_data.h"
#include "addon/model_wrap.h"
#include "addon/tokenizer_wrap.h"
#include "addon/log_wrap.h"
#include "addon/devices_wrap.h"
#include "addon/file_jobs_wrap.h"
#include "io/gguf_reader.h"

#include <napi.h>

namespace gpt2::addon {

static void shutdown_all(addon_data * data) {
    auto live = data->live_models;
    for (ModelWrap * m : live) m->shutdown();
    data->live_models.clear();
}

// Called by lib/binding.ts from process.on('exit'): process.exit() runs no environment cleanup
// hooks before exit(), and exit() destroys ggml's statics while an engine thread may still be
// computing. Stopping the engines here, before exit() is reached, avoids that.
static Napi::Value shutdown_env(const Napi::CallbackInfo & info) {
    shutdown_all(&data_of(info.Env()));
    return info.Env().Undefined();
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
    auto * data = new addon_data();
    env.SetInstanceData<addon_data>(data);   // deleted by node with the environment
    // Stop engine threads before the environment goes away (process exit, worker exit, Electron
    // window close): nothing may call into JS after teardown.
    env.AddCleanupHook([data] {
        shutdown_all(data);
        log_shutdown(data);
    });
    exports.Set("shutdown", Napi::Function::New(env, shutdown_env, "shutdown"));
    gpt2::engine::install_exit_handler();
    // ggml's log goes through ours from the start (silent by default, as documented), not to
    // stderr until the first GGUF file happens to be opened by the model loader
    gpt2::ggml_log_capture_install();
    ModelWrap::Init(env, exports);
    TokenizerWrap::Init(env, exports);
    log_init(env, exports);
    file_jobs_init(env, exports);
    devices_init(env, exports);
    return exports;
}

}   // namespace gpt2::addon

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return gpt2::addon::init(env, exports); }
NODE_API_MODULE(gpt2_node, Init)
