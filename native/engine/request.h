// What a caller submits to the engine, and what the engine reports back.
#pragma once

#include "engine/sampler.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gpt2 {

struct model;

// Speculative decoding (engine/verify.h): tokens guessed by a cheap predictor, checked by the
// model in the step that would have produced one token. The output is the same as without.
struct speculation_params {
    enum class predictor { none, lookup, draft };
    predictor                    kind = predictor::none;
    std::shared_ptr<const model> draft;                   // predictor::draft: same vocabulary
    uint32_t                     max_draft      = 8;      // tokens guessed per step at most
    uint32_t                     ngram_min      = 2;      // lookup: shortest suffix matched
    uint32_t                     ngram_max      = 4;      // lookup: longest suffix matched
    float                        min_confidence = 0.4f;   // draft: stops guessing below this probability
};

enum class request_kind {
    generate,   // prefill the prompt, then sample tokens until a stop condition
    evaluate,   // prefill only and return logits (the last row, or every row)
    score,      // prefill only and return log p(prompt[i] | prompt[..i]) for i ≥ score_from
};

// Why a request ended; named for JS only at the addon's edge ("stop", "length", ...).
enum class finish_reason {
    stop,     // EOS, a stop string, or (evaluate, score) the prompt done
    length,   // max_tokens, or the context full
    abort,    // cancelled
    error,    // see event::error_code
};

struct request {
    uint64_t                 id   = 0;
    request_kind             kind = request_kind::generate;
    std::vector<uint32_t>    prompt;   // non-empty, ids < n_vocab, length ≤ n_ctx
    sampler_params           sampling;
    uint32_t                 max_tokens = 16;   // generate: tokens to sample at most
    bool                     ignore_eos = false;
    bool                     all_logits = false;   // evaluate: every row, not only the last
    std::vector<std::string> stop;                 // generate: stop strings (never emitted)
    uint32_t                 score_from = 1;       // score: first token scored (≥ 1)
    speculation_params       speculation;          // generate

    // Shared with the JS thread.
    std::atomic<bool>    cancelled{ false };
    std::atomic<int64_t> credit{ 0 };   // tokens the consumer can still take (backpressure)
};

// One report about one request; the engine batches them per step.
struct event {
    uint64_t                   id = 0;
    std::vector<uint32_t>      tokens;   // newly sampled tokens
    std::string                text;     // their text, never ending inside a UTF-8 sequence
    bool                       done   = false;
    finish_reason              reason = finish_reason::stop;   // when done
    std::string                error_code;                     // when reason == finish_reason::error
    std::string                error_message;
    uint32_t                   n_prompt    = 0;   // when done: usage
    uint32_t                   n_generated = 0;
    std::vector<float>         logits;           // evaluate: rows × n_vocab
    std::vector<token_logprob> logprobs;         // generate with logprobs: one per token
    std::vector<float>         scores;           // score: one log-probability per scored token
    uint32_t                   n_cached   = 0;   // when done: prompt tokens whose KV was reused
    uint32_t                   n_drafted  = 0;   // when done: tokens the predictor guessed
    uint32_t                   n_accepted = 0;   //   and how many of them the model kept
};

}   // namespace gpt2
