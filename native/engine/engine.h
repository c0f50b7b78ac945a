// The engine: one thread per model context that runs the decode loop for every request.
//
// Each step it builds one batch holding the next token of every running sequence that has
// credit (a consumer that stops pulling withdraws its credit, and only its own sequence pauses)
// plus prompt chunks of sequences being admitted, runs one forward pass, samples, and reports
// all new tokens through one notification. Requests beyond the KV slots wait in FIFO order.
#pragma once

#include "engine/predictor.h"
#include "engine/request.h"
#include "engine/step_cost.h"
#include "runtime/decoder.h"
#include "tokenizer/tokenizer.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gpt2 {

struct engine_stats {
    uint32_t active = 0, queued = 0, slots = 0;
    uint64_t kv_used = 0, kv_capacity = 0;   // positions
    uint64_t tokens_prompt = 0, tokens_generated = 0, steps = 0;
    uint64_t tokens_cached  = 0;                        // prompt tokens not recomputed (prefix reuse)
    uint64_t tokens_drafted = 0, tokens_accepted = 0;   // speculative decoding: guessed, and kept
    double   busy_seconds = 0.0;
};

class engine {
public:
    // `notify` is called on the engine thread after events were queued; it must be cheap and
    // must not call back into the engine (the addon pokes a thread-safe function with it).
    engine(std::shared_ptr<const model> m, const decoder_params & p, std::function<void()> notify);
    ~engine();   // stop()

    void               submit(std::shared_ptr<request> r);
    void               grant(const std::shared_ptr<request> & r, int64_t n);   // more credit
    void               cancel(const std::shared_ptr<request> & r);
    std::vector<event> take_events();

    // Ends every request with ERR_DISPOSED and joins the thread. Idempotent.
    void stop();

    engine_stats stats() const;

    // process exit (exit() after process.exit(), which runs no environment cleanup hooks): stops
    // every engine thread of the process before static destructors run under their feet.
    static void     install_exit_handler();
    const decoder & dec() const { return *decoder_; }

private:
    struct sequence {
        std::shared_ptr<request>        req;
        uint32_t                        slot        = 0;
        uint32_t                        n_past      = 0;   // positions in the cache
        uint32_t                        n_prefilled = 0;   // prompt tokens in the cache
        uint32_t                        n_generated = 0;
        uint32_t                        pending     = 0;   // sampled token not yet in the cache
        bool                            has_pending = false;
        std::unique_ptr<sampler>        smp;
        std::unique_ptr<stream_decoder> text;
        std::vector<float>              logits;         // evaluate: collected rows
        std::vector<float>              scores;         // score: collected log-probabilities
        uint32_t                        n_cached = 0;   // prompt tokens reused from the slot's cache
        std::string                     held;           // text that may be the start of a stop string
        // speculative decoding (request.speculation)
        std::vector<uint32_t>           history;     // prompt, then output: what the predictors read
        std::vector<uint32_t>           guesses;     // this step's
        std::vector<token_distribution> guess_q;     // sampling with a draft model: each guess's distribution
        std::unique_ptr<sampler>        draft_smp;   // sampling with a draft model: draws the guesses
        draft_model *                   drafter    = nullptr;
        uint32_t                        draft_past = 0;     // tokens of history in the draft's cache
        double                          keep_rate  = 0.7;   // how often a guess is kept (moving average)
        uint32_t                        n_unsure   = 0;     // steps the guess count came out 0: every 4th guesses one anyway
        uint32_t                        draft_rest = 0;     // steps to skip the draft model (it had no confident guess)
        uint32_t                        draft_idle = 0;     //   and how many it skips next time (doubles while it stays unsure)
        uint32_t                        n_drafted = 0, n_accepted = 0;
    };

    // One segment of a step's batch: whose, how many tokens, prefill or decode, which logits.
    struct step_entry {
        sequence *    s;
        uint32_t      n;
        bool          prefill;
        batch::logits want;
        bool          verify = false;   // decoding with guesses: n one-token segments, a row each
    };

    // The engine thread's loop (run()), one step at a time:
    void   run();
    bool   admit(std::vector<std::shared_ptr<request>> & unstarted);   // waits for work; false once stopped
    void   plan_step();                                                // fills batch_ and step_
    double run_step();                                                 // decodes, hands out the results; seconds
    void   apply_step();                                               // after a successful decode
    // What each request kind does with its rows of logits.
    void     on_score(sequence & s, const step_entry & e, const float * rows);
    void     on_evaluate(sequence & s, size_t n_rows, const float * rows);
    void     on_generate(sequence & s, float * row);
    uint32_t on_verify(sequence & s, uint32_t n_rows, float * rows);   // tokens given out
    // Speculative decoding: guesses for this step's decoding sequences that speculate, within
    // `room` batch rows (s.guesses). Runs the draft models; a draft that fails ends its requests.
    void          predict(uint32_t room);
    draft_model & drafter_for(const std::shared_ptr<const model> & m);
    void          release_idle_drafters();
    // Hands one token to the consumer (into ev): false once the sequence is done (EOS, a stop
    // string, max_tokens, the context: `reason`). n_past: the cache's positions after its step.
    bool push_token(sequence & s, uint32_t tok, token_logprob * lp, event & ev, uint32_t n_past, finish_reason & reason);
    // After the step's tokens: the event out, then the end, or the next pending token.
    void end_tokens(sequence & s, event && ev, bool more, finish_reason reason);
    void drop_finished();
    void end_all_disposed();

    // Appends new text to the sequence's output, holding back what could start a stop string;
    // returns true when a stop string was completed (the text before it goes out, it does not).
    static bool filter_stop(sequence & s, std::string text, std::string & out);

    bool runnable(const sequence & s) const;
    bool any_runnable() const;
    void publish_stats(double busy_seconds, bool stepped);   // engine thread
    void finish(sequence & s, finish_reason reason, const std::string & code = {}, const std::string & message = {});
    void emit(event && e);
    void end_unstarted(const request & r, finish_reason reason, const std::string & code, const std::string & message);
    void notify();

    std::shared_ptr<const model> model_;
    std::unique_ptr<decoder>     decoder_;
    std::function<void()>        notify_;

    mutable std::mutex                   mu_;
    std::condition_variable              cv_;
    std::deque<std::shared_ptr<request>> queue_;
    bool                                 stop_ = false;
    std::atomic<bool>                    abort_step_{ false };
    std::vector<event>                   events_;
    std::vector<request *>               step_reqs_;   // requests in the forward pass now running

    // engine thread only
    std::vector<std::unique_ptr<sequence>> active_;
    std::vector<uint32_t>                  free_slots_;
    // What each slot's KV cells hold (prompt tokens prefilled there, in whole chunks) and when it
    // was last used: a new request takes the free slot sharing the longest prefix with its
    // prompt (few-shot prompts, chat history), else the least recently used one.
    struct slot_cache {
        std::vector<uint32_t> tokens;
        uint64_t              last_used = 0;
    };
    std::vector<slot_cache> slot_cache_;
    // the draft models speculating requests used, with their decoders (kept while the draft
    // model is loaded: release_idle_drafters())
    std::vector<std::unique_ptr<draft_model>> drafters_;
    uint64_t                                  use_clock_ = 0;
    step_cost                                 cost_;   // decoding steps' time against their rows (speculation sizes its guesses by it)
    uint32_t                                  chunk_ = 128;   // prompt positions per prefill chunk
    uint32_t                                  take_slot(const request & r, uint32_t & n_reused);
    // the step being planned or run
    batch                   batch_;
    std::vector<step_entry> step_;
    std::vector<float>      logits_;
    size_t                  decode_from_    = 0;       // where in active_ the next step's decoding rows start
    bool                    prompt_starved_ = false;   // the last step's decoding rows left a waiting prompt no room

    // stats (guarded by mu_)
    engine_stats stats_;
    std::thread  thread_;
    std::mutex   join_mu_;   // stop() from two threads at once: one joins, the other waits for it
};

}   // namespace gpt2
