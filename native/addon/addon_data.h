// Per-environment state (the addon loads in the main thread, worker threads and Electron's
// processes, each its own napi_env): constructors and the live models, which the environment's
// cleanup hook stops before the environment goes away.
#pragma once

#include <napi.h>

#include <unordered_set>

namespace gpt2::addon {

class ModelWrap;

struct addon_data {
    Napi::FunctionReference         model_ctor;
    Napi::FunctionReference         tokenizer_ctor;
    std::unordered_set<ModelWrap *> live_models;
};

inline addon_data & data_of(Napi::Env env) { return *env.GetInstanceData<addon_data>(); }

}   // namespace gpt2::addon
