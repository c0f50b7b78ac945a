// The token predictors of speculative decoding (request.h, speculation_params): what guesses the
// tokens a sequence will produce next, for the model to check in one step (engine/verify.h).
//  - prompt lookup: the tokens that followed the latest earlier occurrence of the sequence's last
//    n tokens (n from ngram_max down to ngram_min) in its prompt and output so far. Free, and right
//    whenever the output quotes its context (editing, summaries, code, chat);
//  - a draft model: a smaller model with the same vocabulary, run by its own decoder (its own KV
//    cache, one slot for each slot of the target) on the engine thread, a token at a time.
#pragma once

#include "engine/sampler.h"
#include "gpt/batch.h"
#include "runtime/decoder.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace gpt2 {

// Appends to `out` up to `max_n` tokens that followed the latest earlier occurrence of the last
// n tokens of hist[0, n_hist), trying the longest n first.
void lookup_guesses(const uint32_t * hist, size_t n_hist, uint32_t ngram_min, uint32_t ngram_max, uint32_t max_n,
                    std::vector<uint32_t> & out);

using token_distribution = std::vector<std::pair<float, uint32_t>>;   // (probability, id)

// What one sequence asks of the draft model in a step.
struct draft_job {
    uint32_t                          slot           = 0;         // the target's slot: the draft uses the same one
    const uint32_t *                  hist           = nullptr;   // the sequence's tokens, prompt then output
    uint32_t                          n_hist         = 0;
    uint32_t *                        past           = nullptr;   // in/out: how many of hist the draft's cache holds
    uint32_t                          max_n          = 0;         // guesses wanted at most (≥ 1)
    float                             min_confidence = 0.0f;
    sampler *                         smp            = nullptr;   // null: greedy guesses; else drawn from its distribution
    std::vector<uint32_t> *           out            = nullptr;   // the guesses
    std::vector<token_distribution> * q              = nullptr;   // with smp: each guess's distribution
};

class draft_model {
public:
    // Sized like the target's decoder (slots, batch, threads, device), sharing its thread pool
    // (both run on the engine thread, one after the other); its context is the shorter of the
    // two models'.
    draft_model(std::shared_ptr<const model> m, const decoder & target);

    const std::shared_ptr<const model> & mdl() const { return model_; }
    // Whether nothing else holds the model (this object and its decoder hold one reference each):
    // its Model was disposed and no request names it any more.
    bool     orphaned() const { return model_.use_count() <= 2; }
    uint32_t n_ctx() const { return dec_.params().n_ctx; }

    // Feeds each job the tokens of hist its cache lacks, then guesses until max_n guesses, a guess
    // less likely than min_confidence (not kept), or the draft's context is full. On return a
    // job's *past is n_hist + guesses − 1 (its last guess is not fed). False: aborted (guesses
    // cleared, caches consistent). Errors throw, as decoder::decode.
    bool run(std::vector<draft_job> & jobs, const std::atomic<bool> * abort);

    // Seconds the draft spends per guess (a moving average of run()'s time over its guesses).
    double seconds_per_guess() const { return seconds_per_guess_; }
    void   observe(double seconds, size_t guesses) {
        if (guesses == 0) return;
        const double x     = seconds / (double) guesses;
        seconds_per_guess_ = seconds_per_guess_ == 0.0 ? x : 0.8 * seconds_per_guess_ + 0.2 * x;
    }

private:
    // The job's guess from its row of logits; false when it falls below min_confidence.
    bool guess(draft_job & j, float * row);

    std::shared_ptr<const model> model_;
    decoder                      dec_;
    batch                        batch_;
    std::vector<float>           logits_;
    token_distribution           dist_;
    double                       seconds_per_guess_ = 0.0;
};

}   // namespace gpt2
