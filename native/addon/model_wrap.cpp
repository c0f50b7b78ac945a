#include "addon/model_wrap.h"

#include "addon/addon_data.h"
#include "addon/errors.h"
#include "addon/tokenizer_wrap.h"
#include "util/pages.h"

#include <cmath>
#include <cstring>

namespace gpt2::addon {

// ---- engine → JS notification ------------------------------------------------------------------

void model_state::poke() {
    if (!ready.load()) return;
    if (poke_pending.exchange(true)) return;   // a call is queued already; it will take our events
    auto self = shared_from_this();
    napi_status st = tsfn.NonBlockingCall([self](Napi::Env env, Napi::Function) {
        if (self->owner) self->owner->deliver(env);
    });
    if (st != napi_ok) poke_pending.store(false);
}

// Built with raw N-API calls that report failure instead of node-addon-api wrappers: this runs
// from a thread-safe function callback, possibly while a worker is being terminated, when every
// call into JS fails, and node-addon-api's error path would then abort the process
// (nodejs/node-addon-api#591). On any failure the events are dropped: nobody is listening.
#define GPT2_NAPI(call) do { if ((call) != napi_ok) return false; } while (0)

static bool set_u32(napi_env env, napi_value obj, const char * key, uint32_t v) {
    napi_value x;
    GPT2_NAPI(napi_create_uint32(env, v, &x));
    GPT2_NAPI(napi_set_named_property(env, obj, key, x));
    return true;
}

static bool set_str(napi_env env, napi_value obj, const char * key, const std::string & v) {
    napi_value x;
    GPT2_NAPI(napi_create_string_utf8(env, v.data(), v.size(), &x));
    GPT2_NAPI(napi_set_named_property(env, obj, key, x));
    return true;
}

template <typename T>
static bool set_typed(napi_env env, napi_value obj, const char * key, napi_typedarray_type type, const std::vector<T> & v) {
    void * data = nullptr;
    napi_value buf, arr;
    GPT2_NAPI(napi_create_arraybuffer(env, v.size() * sizeof(T), &data, &buf));   // JS-owned memory, copied into
    if (!v.empty()) std::memcpy(data, v.data(), v.size() * sizeof(T));
    GPT2_NAPI(napi_create_typedarray(env, type, v.size(), buf, 0, &arr));
    GPT2_NAPI(napi_set_named_property(env, obj, key, arr));
    return true;
}

// The JS names of finish reasons (lib/binding.ts, NativeEvent.finishReason).
static const char * finish_reason_name(finish_reason r) {
    switch (r) {
        case finish_reason::stop:   return "stop";
        case finish_reason::length: return "length";
        case finish_reason::abort:  return "abort";
        case finish_reason::error:  return "error";
    }
    return "error";
}

static bool events_to_js(napi_env env, const std::vector<event> & events, napi_value * out) {
    GPT2_NAPI(napi_create_array_with_length(env, events.size(), out));
    for (size_t i = 0; i < events.size(); ++i) {
        const event & e = events[i];
        napi_value o, b;
        GPT2_NAPI(napi_create_object(env, &o));
        GPT2_NAPI(napi_create_double(env, (double) e.id, &b));
        GPT2_NAPI(napi_set_named_property(env, o, "id", b));
        if (!set_typed(env, o, "tokens", napi_uint32_array, e.tokens)) return false;
        if (!set_str(env, o, "text", e.text)) return false;
        GPT2_NAPI(napi_get_boolean(env, e.done, &b));
        GPT2_NAPI(napi_set_named_property(env, o, "done", b));
        if (e.done) {
            if (!set_str(env, o, "finishReason", finish_reason_name(e.reason))) return false;
            if (!set_u32(env, o, "promptTokens", e.n_prompt)) return false;
            if (!set_u32(env, o, "completionTokens", e.n_generated)) return false;
            if (!e.error_code.empty()) {
                if (!set_str(env, o, "errorCode", e.error_code)) return false;
                if (!set_str(env, o, "errorMessage", e.error_message)) return false;
            }
            if (!e.logits.empty() && !set_typed(env, o, "logits", napi_float32_array, e.logits)) return false;
            if (!e.scores.empty() && !set_typed(env, o, "scores", napi_float32_array, e.scores)) return false;
            if (!set_u32(env, o, "cachedTokens", e.n_cached)) return false;
        }
        if (!e.logprobs.empty()) {
            napi_value lps;
            GPT2_NAPI(napi_create_array_with_length(env, e.logprobs.size(), &lps));
            for (size_t k = 0; k < e.logprobs.size(); ++k) {
                const token_logprob & lp = e.logprobs[k];
                napi_value item, v, top;
                GPT2_NAPI(napi_create_object(env, &item));
                GPT2_NAPI(napi_create_double(env, lp.logprob, &v));
                GPT2_NAPI(napi_set_named_property(env, item, "logprob", v));
                GPT2_NAPI(napi_create_array_with_length(env, lp.top.size(), &top));
                for (size_t j = 0; j < lp.top.size(); ++j) {
                    napi_value alt;
                    GPT2_NAPI(napi_create_object(env, &alt));
                    if (!set_u32(env, alt, "token", lp.top[j].first)) return false;
                    GPT2_NAPI(napi_create_double(env, lp.top[j].second, &v));
                    GPT2_NAPI(napi_set_named_property(env, alt, "logprob", v));
                    GPT2_NAPI(napi_set_element(env, top, (uint32_t) j, alt));
                }
                GPT2_NAPI(napi_set_named_property(env, item, "top", top));
                GPT2_NAPI(napi_set_element(env, lps, (uint32_t) k, item));
            }
            GPT2_NAPI(napi_set_named_property(env, o, "logprobs", lps));
        }
        GPT2_NAPI(napi_set_element(env, *out, (uint32_t) i, o));
    }
    return true;
}

void ModelWrap::deliver(Napi::Env env) {
    state_->poke_pending.store(false);
    if (!state_->eng) return;
    std::vector<event> events = state_->eng->take_events();
    if (events.empty()) return;
    for (const event & e : events) if (e.done) requests_.erase(e.id);
    if (requests_.empty() && tsfn_ref_) {
        state_->tsfn.Unref(env);   // idle: do not keep the process alive
        tsfn_ref_ = false;
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value arr, global, fn, result;
    if (events_to_js(env, events, &arr) && napi_get_global(env, &global) == napi_ok &&
        napi_get_reference_value(env, static_cast<napi_ref>(on_events_), &fn) == napi_ok && fn != nullptr) {
        // The TS dispatcher catches its handlers' errors, so a failure here means the environment
        // is going away; leave nothing pending behind.
        if (napi_call_function(env, global, fn, 1, &arr, &result) != napi_ok) {
            bool pending = false;
            napi_value ignored;
            if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
        }
    }
    napi_close_handle_scope(env, scope);
}

// ---- loading -----------------------------------------------------------------------------------

class load_worker : public Napi::AsyncWorker {
public:
    load_worker(Napi::Env env, std::string path, decoder_params params, Napi::Function on_events)
        : Napi::AsyncWorker(env, "gpt2-node:load"), deferred_(Napi::Promise::Deferred::New(env)),
          path_(std::move(path)), params_(params), state_(std::make_shared<model_state>()) {
        on_events_ = Napi::Persistent(on_events);
    }
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            state_->mdl = model_load(path_);
            std::weak_ptr<model_state> weak = state_;
            state_->eng = std::make_unique<engine>(state_->mdl, params_, [weak] {
                if (auto s = weak.lock()) s->poke();
            });
        } catch (const gpt2::error & e) {
            code_ = e.code(); message_ = e.what(); kind_ = e.kind();
        } catch (const std::exception & e) {
            code_ = codes::internal; message_ = e.what();
        }
        gpt2::pages::release_free_heap();   // the parse's temporaries, freed on this pool thread
    }

    void OnOK() override {
        Napi::Env env = Env();
        if (!code_.empty()) {
            deferred_.Reject(to_js_error(env, code_, message_, kind_).Value());
            return;
        }
        Napi::Object obj = data_of(env).model_ctor.New({});
        ModelWrap * wrap = ModelWrap::Unwrap(obj);
        wrap->state_ = state_;
        wrap->on_events_ = std::move(on_events_);
        state_->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo &) {}),
                                                     "gpt2-node:events", 0, 1,
                                                     [](Napi::Env) {});
        state_->owner = wrap;
        state_->tsfn.Unref(env);
        wrap->Ref();                                     // alive until dispose() or teardown
        data_of(env).live_models.insert(wrap);
        state_->ready.store(true);
        deferred_.Resolve(obj);
    }

    void OnError(const Napi::Error & e) override { deferred_.Reject(e.Value()); }

private:
    Napi::Promise::Deferred      deferred_;
    std::string                  path_;
    decoder_params               params_;
    std::shared_ptr<model_state> state_;
    Napi::FunctionReference      on_events_;
    std::string                  code_, message_;
    error_kind                   kind_ = error_kind::coded;
};

static bool read_uint_opt(Napi::Env env, Napi::Object o, const char * key, uint32_t max, uint32_t & out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsNumber()) {
        Napi::TypeError::New(env, std::string("Expected integer for ") + key).ThrowAsJavaScriptException();
        return false;
    }
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= max) || std::floor(d) != d) {
        Napi::RangeError::New(env, std::string("Expected integer between 0 and ") + std::to_string(max) + " for " + key +
                                   " but received " + v.ToString().Utf8Value()).ThrowAsJavaScriptException();
        return false;
    }
    out = (uint32_t) d;
    return true;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsFunction()) {
        GPT2_THROW_TYPE(env, "loadModel(path: string, options: object, onEvents: function)");
    }
    Napi::Object o = info[1].As<Napi::Object>();
    decoder_params p;
    if (!read_uint_opt(env, o, "threads", 512, p.n_threads)) return Napi::Value();
    if (!read_uint_opt(env, o, "contextSize", 1u << 20, p.n_ctx)) return Napi::Value();
    if (!read_uint_opt(env, o, "maxSequences", 4096, p.n_seq)) return Napi::Value();
    if (!read_uint_opt(env, o, "batchSize", 1u << 16, p.n_batch)) return Napi::Value();
    if (p.n_seq == 0) p.n_seq = 1;
    Napi::Value kv32 = o.Get("kvF32");
    p.kv_f32 = kv32.IsBoolean() && kv32.As<Napi::Boolean>().Value();
    Napi::Value inv = o.Get("batchInvariant");
    p.batch_invariant = !inv.IsBoolean() || inv.As<Napi::Boolean>().Value();
    Napi::Value dev = o.Get("device");
    if (!dev.IsUndefined()) {
        if (!dev.IsString()) GPT2_THROW_TYPE(env, "Expected string for device");
        p.device = dev.As<Napi::String>().Utf8Value();
    }
    if (!o.Get("gpuLayers").IsUndefined()) {
        uint32_t layers = 0;
        if (!read_uint_opt(env, o, "gpuLayers", 1024, layers)) return Napi::Value();
        p.gpu_layers = (int32_t) layers;
    }

    auto * w = new load_worker(env, info[0].As<Napi::String>().Utf8Value(), p, info[2].As<Napi::Function>());
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
}

// ---- the object --------------------------------------------------------------------------------

void ModelWrap::Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeModel", {
        InstanceMethod<&ModelWrap::Info>("info"),
        InstanceMethod<&ModelWrap::Tokenizer>("tokenizer"),
        InstanceMethod<&ModelWrap::Submit>("submit"),
        InstanceMethod<&ModelWrap::Grant>("grant"),
        InstanceMethod<&ModelWrap::Cancel>("cancel"),
        InstanceMethod<&ModelWrap::Stats>("stats"),
        InstanceMethod<&ModelWrap::Dispose>("dispose"),
    });
    data_of(env).model_ctor = Napi::Persistent(ctor);
    exports.Set("loadModel", Napi::Function::New(env, &ModelWrap::Load, "loadModel"));
}

ModelWrap::ModelWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ModelWrap>(info) {}

ModelWrap::~ModelWrap() { shutdown(); }

void ModelWrap::shutdown() {
    if (!state_) return;
    state_->ready.store(false);
    state_->owner = nullptr;
    if (state_->eng) state_->eng->stop();
    state_->eng.reset();
    state_->mdl.reset();
    if (!disposed_ && state_->tsfn) state_->tsfn.Release();
    disposed_ = true;
}

bool ModelWrap::check_alive(Napi::Env env) {
    if (!disposed_ && state_ && state_->eng) return true;
    to_js_error(env, codes::disposed, "the model has been disposed").ThrowAsJavaScriptException();
    return false;
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return Napi::Value();
    const model & m = *state_->mdl;
    const decoder & d = state_->eng->dec();
    Napi::Object o = Napi::Object::New(env);
    o.Set("architecture", "gpt2");
    o.Set("name", m.name);
    o.Set("path", m.path);
    o.Set("format", m.format);
    o.Set("layers", m.hp.n_layer);
    o.Set("embeddingSize", m.hp.n_embd);
    o.Set("heads", m.hp.n_head);
    o.Set("feedForwardSize", m.hp.n_ff);
    o.Set("contextLength", m.hp.n_ctx);
    o.Set("vocabSize", m.hp.n_vocab);
    o.Set("parameterCount", (double) m.n_params);
    o.Set("tensorType", m.weight_type);
    o.Set("weightBytes", (double) m.n_bytes);
    o.Set("tiedOutput", m.tied_output);
    o.Set("eosTokenId", m.vocab->eos_id());
    o.Set("contextSize", d.params().n_ctx);
    o.Set("maxSequences", d.params().n_seq);
    o.Set("batchSize", d.params().n_batch);
    o.Set("threads", d.params().n_threads);
    o.Set("batchInvariant", d.params().batch_invariant);
    o.Set("device", d.device_id());
    o.Set("gpuLayers", d.gpu_layers());
    o.Set("kvCacheBytes", (double) d.kv_bytes());
    o.Set("computeBufferBytes", (double) d.compute_bytes());
    o.Set("repackedWeights", d.repacked_weights());
    o.Set("interleavedWeights", d.interleaved_weights());
    return o;
}

Napi::Value ModelWrap::Tokenizer(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return Napi::Value();
    return TokenizerWrap::NewInstance(env, state_->mdl->vocab);
}

static bool get_number(Napi::Object o, const char * key, double & out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsNumber()) {
        Napi::TypeError::New(o.Env(), std::string("Expected number for ") + key).ThrowAsJavaScriptException();
        return false;
    }
    out = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(out)) {
        Napi::RangeError::New(o.Env(), std::string("Expected finite number for ") + key).ThrowAsJavaScriptException();
        return false;
    }
    return true;
}

// submit({ kind, prompt: Uint32Array, maxTokens, temperature, topK, topP, minP, seed, ignoreEos,
//          allLogits, credit }) → request id
Napi::Value ModelWrap::Submit(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return Napi::Value();
    if (info.Length() < 1 || !info[0].IsObject()) GPT2_THROW_TYPE(env, "submit(request: object)");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value prompt = o.Get("prompt");
    if (!prompt.IsTypedArray() || prompt.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
        GPT2_THROW_TYPE(env, "Expected Uint32Array for prompt");
    }
    Napi::Uint32Array ids = prompt.As<Napi::Uint32Array>();

    auto r = std::make_shared<request>();
    Napi::Value kind = o.Get("kind");
    const std::string kind_s = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "generate";
    r->kind = kind_s == "evaluate" ? request_kind::evaluate : kind_s == "score" ? request_kind::score : request_kind::generate;
    r->prompt.assign(ids.Data(), ids.Data() + ids.ElementLength());
    double max_tokens = 16, temperature = 1, top_k = 0, top_p = 1, min_p = 0, seed = 0, credit = 1;
    double rep = 1, presence = 0, frequency = 0, window = 64, logprobs = -1, score_from = 1;
    if (!get_number(o, "maxTokens", max_tokens) || !get_number(o, "temperature", temperature) ||
        !get_number(o, "topK", top_k) || !get_number(o, "topP", top_p) || !get_number(o, "minP", min_p) ||
        !get_number(o, "seed", seed) || !get_number(o, "credit", credit) ||
        !get_number(o, "repetitionPenalty", rep) || !get_number(o, "presencePenalty", presence) ||
        !get_number(o, "frequencyPenalty", frequency) || !get_number(o, "penaltyWindow", window) ||
        !get_number(o, "logprobs", logprobs) || !get_number(o, "scoreFrom", score_from)) {
        return Napi::Value();
    }
    if (!(rep > 0) || window < 0 || window > 1e9 || logprobs > 1e6) GPT2_THROW_RANGE(env, "penalty or logprobs option out of range");
    if (score_from < 1 || score_from > (double) ids.ElementLength() || std::floor(score_from) != score_from) {
        GPT2_THROW_RANGE(env, "scoreFrom must be between 1 and the prompt length");
    }
    r->score_from = (uint32_t) score_from;
    r->sampling.repetition_penalty = (float) rep;
    r->sampling.presence_penalty   = (float) presence;
    r->sampling.frequency_penalty  = (float) frequency;
    r->sampling.penalty_window     = (uint32_t) window;
    r->sampling.want_logprobs      = logprobs >= 0;
    r->sampling.logprobs           = logprobs > 0 ? (uint32_t) logprobs : 0;
    // logitBias: Float64Array of (token id, bias) pairs; stop: array of non-empty strings
    Napi::Value bias = o.Get("logitBias");
    if (!bias.IsUndefined()) {
        if (!bias.IsTypedArray() || bias.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
            GPT2_THROW_TYPE(env, "Expected Float64Array of (id, bias) pairs for logitBias");
        }
        Napi::Float64Array b = bias.As<Napi::Float64Array>();
        const uint32_t n_vocab = state_->mdl->hp.n_vocab;
        for (size_t i = 0; i + 1 < b.ElementLength(); i += 2) {
            const double id = b[i], v = b[i + 1];
            if (!(id >= 0 && id < n_vocab) || std::floor(id) != id) GPT2_THROW_RANGE(env, "logitBias token id out of range");
            if (std::isnan(v)) GPT2_THROW_RANGE(env, "logitBias value is NaN");
            r->sampling.logit_bias.emplace_back((uint32_t) id, (float) v);
        }
    }
    Napi::Value stop = o.Get("stop");
    if (!stop.IsUndefined()) {
        if (!stop.IsArray()) GPT2_THROW_TYPE(env, "Expected array of strings for stop");
        Napi::Array a = stop.As<Napi::Array>();
        for (uint32_t i = 0; i < a.Length(); ++i) {
            Napi::Value sv = a.Get(i);
            if (!sv.IsString()) GPT2_THROW_TYPE(env, "Expected array of strings for stop");
            std::string str = sv.As<Napi::String>().Utf8Value();
            if (str.empty()) GPT2_THROW_RANGE(env, "stop strings must not be empty");
            r->stop.push_back(std::move(str));
        }
    }
    if (max_tokens < 1 || max_tokens > 4294967295.0) GPT2_THROW_RANGE(env, "maxTokens out of range");
    if (temperature < 0) GPT2_THROW_RANGE(env, "temperature must be ≥ 0");
    if (top_k < 0 || top_k > 4294967295.0) GPT2_THROW_RANGE(env, "topK out of range");
    if (!(top_p > 0 && top_p <= 1)) GPT2_THROW_RANGE(env, "topP must be in (0, 1]");
    if (!(min_p >= 0 && min_p <= 1)) GPT2_THROW_RANGE(env, "minP must be in [0, 1]");
    if (seed < 0 || seed > 9007199254740991.0) GPT2_THROW_RANGE(env, "seed out of range");
    r->max_tokens           = (uint32_t) max_tokens;
    r->sampling.temperature = (float) temperature;
    r->sampling.top_k       = (uint32_t) top_k;
    r->sampling.top_p       = (float) top_p;
    r->sampling.min_p       = (float) min_p;
    r->sampling.seed        = (uint64_t) seed;
    r->ignore_eos           = o.Get("ignoreEos").ToBoolean().Value();
    r->all_logits           = o.Get("allLogits").ToBoolean().Value();
    r->credit.store((int64_t) std::max(0.0, credit));
    r->id = next_id_++;

    try {
        state_->eng->submit(r);
    } catch (const std::exception & e) {
        to_js_error(env, e).ThrowAsJavaScriptException();
        return Napi::Value();
    }
    requests_.emplace(r->id, r);
    if (!tsfn_ref_) {
        state_->tsfn.Ref(env);   // requests in flight keep the process alive
        tsfn_ref_ = true;
    }
    return Napi::Number::New(env, (double) r->id);
}

static bool read_id(const Napi::CallbackInfo & info, uint64_t & id) {
    if (info.Length() < 1 || !info[0].IsNumber()) {
        Napi::TypeError::New(info.Env(), "Expected request id").ThrowAsJavaScriptException();
        return false;
    }
    id = (uint64_t) info[0].As<Napi::Number>().Int64Value();
    return true;
}

Napi::Value ModelWrap::Grant(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    uint64_t id;
    if (!read_id(info, id)) return Napi::Value();
    if (info.Length() < 2 || !info[1].IsNumber()) GPT2_THROW_TYPE(env, "Expected number of tokens to grant");
    if (disposed_) return env.Undefined();
    auto it = requests_.find(id);
    if (it != requests_.end()) state_->eng->grant(it->second, info[1].As<Napi::Number>().Int64Value());
    return env.Undefined();
}

Napi::Value ModelWrap::Cancel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    uint64_t id;
    if (!read_id(info, id)) return Napi::Value();
    if (disposed_) return env.Undefined();
    auto it = requests_.find(id);
    if (it != requests_.end()) state_->eng->cancel(it->second);
    return env.Undefined();
}

Napi::Value ModelWrap::Stats(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return Napi::Value();
    engine_stats s = state_->eng->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("activeSequences", s.active);
    o.Set("queuedSequences", s.queued);
    o.Set("slots", s.slots);
    o.Set("kvUsed", (double) s.kv_used);
    o.Set("kvCapacity", (double) s.kv_capacity);
    o.Set("promptTokens", (double) s.tokens_prompt);
    o.Set("generatedTokens", (double) s.tokens_generated);
    o.Set("cachedTokens", (double) s.tokens_cached);
    o.Set("steps", (double) s.steps);
    o.Set("busySeconds", s.busy_seconds);
    return o;
}

// ---- disposal ----------------------------------------------------------------------------------

class dispose_worker : public Napi::AsyncWorker {
public:
    dispose_worker(Napi::Env env, ModelWrap * wrap)
        : Napi::AsyncWorker(env, "gpt2-node:dispose"), deferred_(Napi::Promise::Deferred::New(env)), wrap_(wrap),
          state_(wrap->state_) {}
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        state_->eng->stop();   // joins the engine thread; in-flight requests end with ERR_DISPOSED
    }

    void OnOK() override {
        Napi::Env env = Env();
        wrap_->deliver(env);   // the final events, before anything is freed
        state_->ready.store(false);
        state_->eng.reset();
        state_->mdl.reset();
        state_->tsfn.Release();
        data_of(env).live_models.erase(wrap_);
        wrap_->Unref();
        deferred_.Resolve(env.Undefined());
    }

private:
    Napi::Promise::Deferred      deferred_;
    ModelWrap *                  wrap_;
    std::shared_ptr<model_state> state_;
};

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (disposed_ || !state_ || !state_->eng) {
        auto d = Napi::Promise::Deferred::New(env);
        d.Resolve(env.Undefined());
        return d.Promise();
    }
    disposed_ = true;
    auto * w = new dispose_worker(env, this);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

} // namespace gpt2::addon
