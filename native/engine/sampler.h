// Picks the next token from a row of logits, per sequence:
//   1. logit bias, then repetition / presence / frequency penalties over the last
//      `penalty_window` tokens of the sequence (prompt included);
//   2. log-probabilities of that distribution, when asked (logprobs of the chosen token and the
//      top-n alternatives, as OpenAI reports them);
//   3. greedy when temperature is 0, otherwise softmax sampling at the temperature after top-k /
//      min-p / top-p filtering, with the sequence's own seeded RNG (the same seed gives the same
//      tokens, whatever else runs beside it).
#pragma once

#include "engine/rng.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gpt2 {

struct sampler_params {
    float    temperature        = 1.0f;   // 0: greedy
    uint32_t top_k              = 0;      // 0: off
    float    top_p              = 1.0f;   // 1: off
    float    min_p              = 0.0f;   // 0: off
    uint64_t seed               = 0;
    float    repetition_penalty = 1.0f;                              // 1: off; > 1 discourages repeats (CTRL-style: divide positive logits)
    float    presence_penalty   = 0.0f;                              // subtracted once from tokens present in the window
    float    frequency_penalty  = 0.0f;                              // subtracted per occurrence in the window
    uint32_t penalty_window     = 64;                                // tokens looked back for penalties
    std::vector<std::pair<uint32_t, float>> logit_bias;              // added to logits (-inf bans)
    uint32_t                                logprobs      = 0;       // top-n alternatives to report (0: none; the chosen one is
    bool                                    want_logprobs = false;   //   reported whenever want_logprobs)
};

struct token_logprob {
    float                                   logprob = 0.0f;   // of the chosen token
    std::vector<std::pair<uint32_t, float>> top;              // best alternatives, descending
};

class sampler {
public:
    explicit sampler(const sampler_params & p) : p_(p), rng_(p.seed) {}

    // The tokens the sequence already holds (its prompt), for the penalties.
    void prime(const uint32_t * ids, size_t n);

    // Samples; `logits` is modified in place (bias and penalties applied). Records the token.
    uint32_t sample(float * logits, uint32_t n_vocab, token_logprob * lp = nullptr);

    static uint32_t argmax(const float * logits, uint32_t n_vocab);   // lowest id on ties

    // The steps of sample(), for speculative decoding (engine/verify.h), which must know the
    // distribution a token is drawn from rather than only draw one:
    bool greedy() const { return p_.temperature <= 0.0f || p_.top_k == 1; }
    // bias and penalties, in place
    void prepare(float * logits, uint32_t n_vocab) const { apply_bias_and_penalties(logits, n_vocab); }
    // The distribution sample() draws from, given prepared logits: (probability, id) of the kept
    // candidates, normalized, in no particular order. Greedy: the one token, probability 1.
    void distribution(const float * logits, uint32_t n_vocab, std::vector<std::pair<float, uint32_t>> & out);
    // A token drawn from (weight, id) pairs (weights need not be normalized), with this sampler's RNG.
    uint32_t draw(const std::pair<float, uint32_t> * cand, size_t n);
    double   uniform() { return rng_.uniform(); }
    // Log-probability of `chosen` (and the top alternatives) under prepared logits at temperature 1.
    void logprob(const float * logits, uint32_t n_vocab, uint32_t chosen, token_logprob & lp) const;
    // Adds a token to the penalty window (sample() does it for the token it returns).
    void accept(uint32_t id);

private:
    void apply_bias_and_penalties(float * logits, uint32_t n_vocab) const;
    // The kept candidates (unnormalized weight, id) into the thread's scratch; returns how many.
    size_t filter(const float * logits, uint32_t n_vocab);

    sampler_params                         p_;
    rng                                    rng_;
    std::deque<uint32_t>                   window_;   // last penalty_window tokens
    std::unordered_map<uint32_t, uint32_t> counts_;   // occurrences in window_
};

}   // namespace gpt2
