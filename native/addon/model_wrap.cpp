#include "addon/model_wrap.h"

#include "addon/addon_data.h"
#include "addon/errors.h"
#include "addon/tokenizer_js.h"
#include "addon/tokenizer_wrap.h"
#include "util/pages.h"

#include <cmath>
#include <cstring>
#include <new>
#include <system_error>

namespace gpt2::addon {

// ---- engine → JS notification ------------------------------------------------------------------

void model_state::poke() {
    if (!ready.load()) return;
    if (poke_pending.exchange(true)) return;   // a call is queued already; it will take our events
    auto        self = shared_from_this();
    napi_status st   = tsfn.NonBlockingCall([self](Napi::Env env, Napi::Function) {
        if (self->owner) self->owner->deliver(env);
    });
    if (st != napi_ok) poke_pending.store(false);
}

// Built with raw N-API calls that report failure instead of node-addon-api wrappers: this runs
// from a thread-safe function callback, possibly while a worker is being terminated, when every
// call into JS fails, and node-addon-api's error path would then abort the process
// (nodejs/node-addon-api#591). On any failure the events are dropped: nobody is listening.
#define GPT2_NAPI(call)                                                                                                                    \
    do {                                                                                                                                   \
        if ((call) != napi_ok) return false;                                                                                               \
    } while (0)

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
    void *     data = nullptr;
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
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::abort: return "abort";
    case finish_reason::error: return "error";
    }
    return "error";
}

static bool events_to_js(napi_env env, const std::vector<event> & events, napi_value * out) {
    GPT2_NAPI(napi_create_array_with_length(env, events.size(), out));
    for (size_t i = 0; i < events.size(); ++i) {
        const event & e = events[i];
        napi_value    o, b;
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
            if (!set_u32(env, o, "draftedTokens", e.n_drafted)) return false;
            if (!set_u32(env, o, "acceptedTokens", e.n_accepted)) return false;
        }
        if (!e.logprobs.empty()) {
            napi_value lps;
            GPT2_NAPI(napi_create_array_with_length(env, e.logprobs.size(), &lps));
            for (size_t k = 0; k < e.logprobs.size(); ++k) {
                const token_logprob & lp = e.logprobs[k];
                napi_value            item, v, top;
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
    for (const event & e : events)
        if (e.done) requests_.erase(e.id);
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
            bool       pending = false;
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
        : Napi::AsyncWorker(env, "gpt2-node:load"), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)), params_(params),
          state_(std::make_shared<model_state>()) {
        on_events_ = Napi::Persistent(on_events);
    }
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            state_->mdl                     = model_load(path_);
            std::weak_ptr<model_state> weak = state_;
            state_->eng                     = std::make_unique<engine>(state_->mdl, params_, [weak] {
                if (auto s = weak.lock()) s->poke();
            });
        } catch (const gpt2::error & e) {
            code_    = e.code();
            message_ = e.what();
            kind_    = e.kind();
        } catch (const std::bad_alloc &) {
            code_    = codes::out_of_memory;
            message_ = path_ + ": out of memory while loading the model";
        } catch (const std::system_error & e) {
            // std::thread's EAGAIN: no memory (or no thread) left for the engine thread's stack
            const bool no_room = e.code() == std::errc::resource_unavailable_try_again || e.code() == std::errc::not_enough_memory;
            code_              = no_room ? codes::out_of_memory : codes::internal;
            message_           = no_room ? std::string("cannot start the engine thread (") + e.what() + ")" : e.what();
        } catch (const std::exception & e) {
            code_    = codes::internal;
            message_ = e.what();
        }
        gpt2::pages::release_free_heap();   // the parse's temporaries, freed on this pool thread
    }

    // Settled through settle(): while a terminated worker's environment goes away, a throw here
    // would abort the process. The model is then freed with this worker (its engine stopped).
    void OnOK() override {
        settle(deferred_, [&] {
            Napi::Env env = Env();
            if (!code_.empty()) {
                deferred_.Reject(to_js_error(env, code_, message_, kind_).Value());
                return;
            }
            Napi::Object obj  = data_of(env).model_ctor.New({});
            ModelWrap *  wrap = ModelWrap::Unwrap(obj);
            wrap->state_      = state_;
            wrap->on_events_  = std::move(on_events_);
            state_->tsfn      = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo &) {}),
                                                              "gpt2-node:events", 0, 1, [](Napi::Env) {});
            state_->owner     = wrap;
            state_->tsfn.Unref(env);
            wrap->Ref();   // alive until dispose() or teardown
            data_of(env).live_models.insert(wrap);
            state_->ready.store(true);
            deferred_.Resolve(obj);
        });
    }

    void OnError(const Napi::Error & e) override {
        settle(deferred_, [&] { deferred_.Reject(e.Value()); });
    }

private:
    Napi::Promise::Deferred      deferred_;
    std::string                  path_;
    decoder_params               params_;
    std::shared_ptr<model_state> state_;
    Napi::FunctionReference      on_events_;
    std::string                  code_, message_;
    error_kind                   kind_ = error_kind::coded;
};

// ---- typed reads of options -------------------------------------------------------------------
//
// lib/ validates every option against its documented range first (lib/validate.ts): that is the
// one place users' mistakes are reported. These readers only keep a caller that bypasses lib/
// from hurting the process: a value of the wrong type is a TypeError, an integer must fit the C++
// field it lands in (lo and hi are that field's limits, or the limit the engine needs), a
// number must be finite. undefined leaves `out` at its default. Each returns false after
// throwing; the caller returns at once.

template <typename T> static bool read_integer(Napi::Env env, Napi::Object o, const char * key, long long lo, long long hi, T & out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsNumber()) return throw_type(env, expected_integer(key, lo, hi, describe(v)));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= (double) lo && d <= (double) hi) || std::floor(d) != d) return throw_range(env, expected_integer(key, lo, hi, describe(v)));
    out = (T) d;
    return true;
}

// Finite, so that no NaN reaches the sampler's orderings. A double beyond float's range becomes
// ±inf in a float field (IEEE conversion).
template <typename T> static bool read_number(Napi::Env env, Napi::Object o, const char * key, T & out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsNumber()) return throw_type(env, std::string("Expected number for ") + key + " but received " + describe(v, true));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) return throw_range(env, std::string("Expected finite number for ") + key + " but received " + describe(v));
    out = (T) d;
    return true;
}

static bool read_boolean(Napi::Env env, Napi::Object o, const char * key, bool & out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsBoolean()) return throw_type(env, std::string("Expected boolean for ") + key + " but received " + describe(v, true));
    out = v.As<Napi::Boolean>().Value();
    return true;
}

static bool read_string(Napi::Env env, Napi::Object o, const char * key, std::string & out) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return true;
    if (!v.IsString()) return throw_type(env, std::string("Expected string for ") + key + " but received " + describe(v, true));
    out = v.As<Napi::String>().Utf8Value();
    return true;
}

// loadModel(path, options, onEvents). The limits are lib/model.ts's, which bound what is sized
// from them (512 threads is also ggml's GGML_MAX_N_THREADS); 0 or undefined means the default.
// The decoder checks contextSize and gpuLayers against the model, and the device name.
Napi::Value ModelWrap::Load(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsFunction()) {
        GPT2_THROW_TYPE(env, "loadModel(path: string, options: object, onEvents: function)");
    }
    Napi::Object   o = info[1].As<Napi::Object>();
    decoder_params p;
    if (!read_integer(env, o, "threads", 0, 512, p.n_threads) || !read_integer(env, o, "contextSize", 0, 1 << 20, p.n_ctx) ||
        !read_integer(env, o, "maxSequences", 0, 4096, p.n_seq) || !read_integer(env, o, "batchSize", 0, 1 << 16, p.n_batch) ||
        !read_integer(env, o, "gpuLayers", 0, 1024, p.gpu_layers) || !read_boolean(env, o, "kvF32", p.kv_f32) ||
        !read_boolean(env, o, "batchInvariant", p.batch_invariant) || !read_string(env, o, "device", p.device)) {
        return Napi::Value();
    }
    if (p.n_seq == 0) p.n_seq = 1;

    auto *        w       = new load_worker(env, info[0].As<Napi::String>().Utf8Value(), p, info[2].As<Napi::Function>());
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
}

// ---- the object --------------------------------------------------------------------------------

void ModelWrap::Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor     = DefineClass(env, "NativeModel",
                                          {
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
    // With a dispose() in flight, this waits for its pool thread's join (engine::stop() is safe
    // from two threads), and that worker keeps its own reference to the engine it is stopping.
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
    const model &   m = *state_->mdl;
    const decoder & d = state_->eng->dec();
    Napi::Object    o = Napi::Object::New(env);
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
    o.Set("batchInvariant", d.batch_invariant());
    o.Set("device", d.device_id());
    o.Set("gpuLayers", d.gpu_layers());
    o.Set("kvCacheBytes", (double) d.kv_bytes());
    o.Set("computeBufferBytes", (double) d.compute_bytes());
    o.Set("repackedWeights", d.repacked_weights());
    o.Set("interleavedWeights", d.interleaved_weights());
    o.Set("cpuKernels", d.cpu_kernels());
    o.Set("padsLoneRow", d.pads_lone_row());
    return o;
}

Napi::Value ModelWrap::Tokenizer(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return Napi::Value();
    return TokenizerWrap::NewInstance(env, state_->mdl->vocab);
}

static bool read_kind(Napi::Env env, Napi::Object o, request_kind & out) {
    static const char * const expected = "Expected 'generate', 'evaluate' or 'score' for kind but received ";
    Napi::Value               v        = o.Get("kind");
    if (!v.IsString()) return throw_type(env, expected + describe(v, true));
    const std::string k = v.As<Napi::String>().Utf8Value();
    if (k == "generate") out = request_kind::generate;
    else if (k == "evaluate") out = request_kind::evaluate;
    else if (k == "score") out = request_kind::score;
    else return throw_range(env, expected + describe(v, true));
    return true;
}

// speculation: { predictor: 'lookup' | 'draft', draft?: native model, maxDraft, ngramMin, ngramMax,
// minConfidence } (lib/generate-request.ts checks the ranges). A draft model must be loaded and
// have the target's vocabulary: its guesses are token ids the target reads.
bool ModelWrap::read_speculation(Napi::Env env, Napi::Object o, speculation_params & sp) {
    Napi::Value v = o.Get("speculation");
    if (v.IsUndefined()) return true;
    if (!v.IsObject()) return throw_type(env, "Expected object for speculation but received " + describe(v, true));
    Napi::Object so   = v.As<Napi::Object>();
    std::string  kind = "lookup";
    if (!read_string(env, so, "predictor", kind) || !read_integer(env, so, "maxDraft", 1, 64, sp.max_draft) ||
        !read_integer(env, so, "ngramMin", 1, 64, sp.ngram_min) || !read_integer(env, so, "ngramMax", 1, 64, sp.ngram_max) ||
        !read_number(env, so, "minConfidence", sp.min_confidence)) {
        return false;
    }
    if (sp.ngram_min > sp.ngram_max) return throw_range(env, "Expected speculation.ngramMin to be at most ngramMax");
    if (kind == "lookup") {
        sp.kind = speculation_params::predictor::lookup;
        return true;
    }
    if (kind != "draft")
        return throw_range(env,
                           "Expected 'lookup' or 'draft' for speculation.predictor but received " + describe(so.Get("predictor"), true));
    sp.kind       = speculation_params::predictor::draft;
    Napi::Value d = so.Get("draft");
    if (!d.IsObject() || !d.As<Napi::Object>().InstanceOf(data_of(env).model_ctor.Value())) {
        return throw_type(env, "Expected a loaded Model for speculation.draft but received " + describe(d, true));
    }
    ModelWrap * dw = ModelWrap::Unwrap(d.As<Napi::Object>());
    if (!dw->check_alive(env)) return false;
    const tokenizer & a = *state_->mdl->vocab;
    const tokenizer & b = *dw->state_->mdl->vocab;
    bool same           = a.n_vocab() == b.n_vocab() && a.eos_id() == b.eos_id() && state_->mdl->hp.n_vocab == dw->state_->mdl->hp.n_vocab;
    for (uint32_t id = 0; same && id < a.n_vocab(); ++id) same = a.token_bytes(id) == b.token_bytes(id);
    if (!same) {
        to_js_error(env, codes::incompatible_model, "the draft model's vocabulary differs from this model's").ThrowAsJavaScriptException();
        return false;
    }
    sp.draft = dw->state_->mdl;
    return true;
}

// submit(request: NativeRequest) → request id. Reads typed values only (see the readers above):
// engine::submit checks the prompt (non-empty, within the context, ids in the vocabulary), and
// logitBias is checked here: ids in the vocabulary (they index the logits), no NaN bias (the
// sampler orders logits; ±Infinity is fine).
Napi::Value ModelWrap::Submit(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return Napi::Value();
    if (info.Length() < 1 || !info[0].IsObject()) GPT2_THROW_TYPE(env, "submit(request: object)");
    Napi::Object        o       = info[0].As<Napi::Object>();
    constexpr long long u32_max = 4294967295LL, safe_max = 9007199254740991LL;   // 2^32 - 1, 2^53 - 1

    auto r = std::make_shared<request>();
    if (!read_kind(env, o, r->kind)) return Napi::Value();
    Napi::Value prompt = o.Get("prompt");
    if (!prompt.IsTypedArray() || prompt.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
        GPT2_THROW_TYPE(env, "Expected Uint32Array for prompt but received " + describe(prompt, true));
    }
    Napi::Uint32Array ids = prompt.As<Napi::Uint32Array>();
    r->prompt.assign(ids.Data(), ids.Data() + ids.ElementLength());

    sampler_params & s        = r->sampling;
    long long        logprobs = -1, credit = 1;
    if (!read_integer(env, o, "maxTokens", 1, u32_max, r->max_tokens) || !read_integer(env, o, "scoreFrom", 1, u32_max, r->score_from) ||
        !read_boolean(env, o, "ignoreEos", r->ignore_eos) || !read_boolean(env, o, "allLogits", r->all_logits) ||
        !read_number(env, o, "temperature", s.temperature) || !read_integer(env, o, "topK", 0, u32_max, s.top_k) ||
        !read_number(env, o, "topP", s.top_p) || !read_number(env, o, "minP", s.min_p) ||
        !read_integer(env, o, "seed", 0, safe_max, s.seed) || !read_number(env, o, "repetitionPenalty", s.repetition_penalty) ||
        !read_number(env, o, "presencePenalty", s.presence_penalty) || !read_number(env, o, "frequencyPenalty", s.frequency_penalty) ||
        !read_integer(env, o, "penaltyWindow", 0, u32_max, s.penalty_window) || !read_integer(env, o, "logprobs", -1, u32_max, logprobs) ||
        !read_integer(env, o, "credit", 0, safe_max, credit)) {
        return Napi::Value();
    }
    if (!read_speculation(env, o, r->speculation)) return Napi::Value();
    s.want_logprobs = logprobs >= 0;
    s.logprobs      = logprobs > 0 ? (uint32_t) logprobs : 0;
    r->credit.store((int64_t) credit);

    // logitBias: Float64Array of (token id, bias) pairs
    Napi::Value bias = o.Get("logitBias");
    if (!bias.IsUndefined()) {
        if (!bias.IsTypedArray() || bias.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
            GPT2_THROW_TYPE(env, "Expected Float64Array of (id, bias) pairs for logitBias but received " + describe(bias, true));
        }
        Napi::Float64Array b       = bias.As<Napi::Float64Array>();
        const uint32_t     n_vocab = state_->mdl->hp.n_vocab;
        for (size_t i = 0; i + 1 < b.ElementLength(); i += 2) {
            const double id = b[i], v = b[i + 1];
            if (!(id >= 0 && id < n_vocab) || std::floor(id) != id) {
                GPT2_THROW_RANGE(env, expected_integer("logitBias key", 0, n_vocab - 1, Napi::Number::New(env, id).ToString().Utf8Value()));
            }
            if (std::isnan(v))
                GPT2_THROW_TYPE(env,
                                "Expected number for logitBias[" + std::to_string((uint32_t) id) + "] but received NaN of type number");
            s.logit_bias.emplace_back((uint32_t) id, (float) v);
        }
    }
    // stop: array of strings. engine::filter_stop costs up to (count × length²) per token, so both
    // are bounded (lib/ allows 16 strings of 256 UTF-16 units, at most 768 UTF-8 bytes each).
    Napi::Value stop = o.Get("stop");
    if (!stop.IsUndefined()) {
        constexpr uint32_t max_stops      = 16;
        constexpr size_t   max_stop_bytes = 1024;
        if (!stop.IsArray()) GPT2_THROW_TYPE(env, "Expected array of strings for stop but received " + describe(stop, true));
        Napi::Array a = stop.As<Napi::Array>();
        if (a.Length() > max_stops) {
            GPT2_THROW_RANGE(env,
                             "Expected at most " + std::to_string(max_stops) + " stop strings but received " + std::to_string(a.Length()));
        }
        for (uint32_t i = 0; i < a.Length(); ++i) {
            Napi::Value sv    = a.Get(i);
            size_t      bytes = 0;   // the UTF-8 length, measured before anything is copied
            if (!sv.IsString() || napi_get_value_string_utf8(env, sv, nullptr, 0, &bytes) != napi_ok)
                GPT2_THROW_TYPE(env, "Expected string for stop[" + std::to_string(i) + "] but received " + describe(sv, true));
            if (bytes > max_stop_bytes) {
                GPT2_THROW_RANGE(env,
                                 "Expected at most " + std::to_string(max_stop_bytes) + " UTF-8 bytes for stop[" + std::to_string(i) +
                                     "] but received " + std::to_string(bytes));
            }
            r->stop.push_back(sv.As<Napi::String>().Utf8Value());
        }
    }
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
    uint64_t  id;
    if (!read_id(info, id)) return Napi::Value();
    if (info.Length() < 2 || !info[1].IsNumber()) GPT2_THROW_TYPE(env, "Expected number of tokens to grant");
    if (disposed_) return env.Undefined();
    auto it = requests_.find(id);
    if (it != requests_.end()) state_->eng->grant(it->second, info[1].As<Napi::Number>().Int64Value());
    return env.Undefined();
}

Napi::Value ModelWrap::Cancel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    uint64_t  id;
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
    o.Set("draftedTokens", (double) s.tokens_drafted);
    o.Set("acceptedTokens", (double) s.tokens_accepted);
    o.Set("steps", (double) s.steps);
    o.Set("busySeconds", s.busy_seconds);
    return o;
}

// ---- disposal ----------------------------------------------------------------------------------

class dispose_worker : public Napi::AsyncWorker {
public:
    dispose_worker(Napi::Env env, ModelWrap * wrap)
        : Napi::AsyncWorker(env, "gpt2-node:dispose"), deferred_(Napi::Promise::Deferred::New(env)), wrap_(wrap), state_(wrap->state_),
          eng_(wrap->state_->eng) {}
    Napi::Promise promise() { return deferred_.Promise(); }

    // Its own reference to the engine: process.exit()'s shutdown() may reset state_->eng while
    // this runs (it stops the engine too, and waits for this join).
    void Execute() override {
        eng_->stop();   // joins the engine thread; in-flight requests end with ERR_DISPOSED
    }

    void OnOK() override {
        settle(deferred_, [&] {
            Napi::Env env = Env();
            wrap_->deliver(env);   // the final events, before anything is freed
            state_->ready.store(false);
            state_->eng.reset();
            eng_.reset();
            state_->mdl.reset();
            // what the model's life left free in malloc's heaps (glibc keeps it, its mmap
            // threshold having risen past our buffer sizes): back to the system, as after a load
            gpt2::pages::release_free_heap();
            state_->tsfn.Release();
            data_of(env).live_models.erase(wrap_);
            wrap_->Unref();
            deferred_.Resolve(env.Undefined());
        });
    }

private:
    Napi::Promise::Deferred      deferred_;
    ModelWrap *                  wrap_;
    std::shared_ptr<model_state> state_;
    std::shared_ptr<engine>      eng_;
};

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (disposed_ || !state_ || !state_->eng) {
        auto d = Napi::Promise::Deferred::New(env);
        d.Resolve(env.Undefined());
        return d.Promise();
    }
    disposed_       = true;
    auto *        w = new dispose_worker(env, this);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

}   // namespace gpt2::addon
