#include "engine/engine.h"

#include "engine/verify.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <new>

namespace gpt2 {

namespace {

// Prompt tokens per sequence per step (see run()): smaller chunks lower the other streams'
// inter-token latency, larger ones amortize weight reads over more rows (to tune with bench/).
constexpr uint32_t k_prefill_chunk = 128;

// Every live engine of the process, for the exit handler.
struct engine_registry {
    std::mutex            mu;
    std::vector<engine *> engines;
    std::atomic<bool>     exiting{ false };
};

engine_registry & registry() {
    static engine_registry r;
    return r;
}

void stop_all_engines_at_exit() {
    engine_registry & r = registry();
    r.exiting.store(true);
    std::vector<engine *> engines;
    {
        std::lock_guard<std::mutex> lock(r.mu);
        engines = r.engines;
    }
    for (engine * e : engines) e->stop();
}

}   // namespace

void engine::install_exit_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        registry();   // constructed before the handler is registered, so destroyed after it runs
        std::atexit(stop_all_engines_at_exit);
    });
}

engine::engine(std::shared_ptr<const model> m, const decoder_params & p, std::function<void()> notify)
    : model_(std::move(m)), notify_(std::move(notify)) {
    decoder_ = std::make_unique<decoder>(model_, p);
    decoder_->set_abort_flag(&abort_step_);
    const uint32_t n_seq = decoder_->params().n_seq;
    for (uint32_t s = n_seq; s-- > 0;) free_slots_.push_back(s);   // hand out slot 0 first
    slot_cache_.resize(n_seq);
    chunk_             = std::min<uint32_t>(k_prefill_chunk, decoder_->params().n_batch);
    stats_.slots       = n_seq;
    stats_.kv_capacity = (uint64_t) n_seq * decoder_->params().n_ctx;
    {
        std::lock_guard<std::mutex> lock(registry().mu);
        registry().engines.push_back(this);
    }
    thread_ = std::thread([this] { run(); });
}

engine::~engine() {
    stop();
    std::lock_guard<std::mutex> lock(registry().mu);
    auto &                      v = registry().engines;
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void engine::submit(std::shared_ptr<request> r) {
    const decoder_params & p = decoder_->params();
    if (r->prompt.empty()) throw range_error("the prompt must hold at least one token");
    if (r->prompt.size() > p.n_ctx) {
        throw range_error("Expected at most " + std::to_string(p.n_ctx) + " prompt tokens (the context size) but received " +
                          std::to_string(r->prompt.size()));
    }
    const uint32_t n_vocab = model_->hp.n_vocab;
    for (size_t i = 0; i < r->prompt.size(); ++i) {
        if (r->prompt[i] >= n_vocab) {
            throw range_error(expected_integer("prompt[" + std::to_string(i) + "]", 0, n_vocab - 1, r->prompt[i]));
        }
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) throw error(codes::disposed, "the model has been disposed");
        queue_.push_back(std::move(r));
        stats_.queued = (uint32_t) queue_.size();
    }
    cv_.notify_one();
}

void engine::grant(const std::shared_ptr<request> & r, int64_t n) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        r->credit.fetch_add(n);
    }
    cv_.notify_one();
}

void engine::cancel(const std::shared_ptr<request> & r) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        r->cancelled.store(true);
        // Stop the running forward pass if it only serves cancelled requests (a long prefill).
        if (!step_reqs_.empty() && std::all_of(step_reqs_.begin(), step_reqs_.end(), [](request * q) { return q->cancelled.load(); })) {
            abort_step_.store(true);
        }
    }
    cv_.notify_one();
}

std::vector<event> engine::take_events() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<event>          out;
    out.swap(events_);
    return out;
}

void engine::stop() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
        abort_step_.store(true);
    }
    cv_.notify_one();
    // A dispose()'s pool thread and process.exit()'s shutdown (or an environment's cleanup hook)
    // may stop the engine at once: joining one thread from two is undefined (seen: a hang in
    // pthread_join), so the second waits here for the first's join, then finds nothing to join.
    std::lock_guard<std::mutex> join_lock(join_mu_);
    if (thread_.joinable()) thread_.join();
}

engine_stats engine::stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
}

void engine::notify() {
    if (registry().exiting.load()) return;   // at exit, JS is gone: nobody to tell
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (events_.empty()) return;   // nothing new this step: no call into JS
    }
    notify_();
}

void engine::emit(event && e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
}

bool engine::runnable(const sequence & s) const {
    const request & r = *s.req;
    if (r.cancelled.load()) return true;                // to be finished
    if (s.n_prefilled < r.prompt.size()) return true;   // prefill needs no credit
    return s.has_pending && r.credit.load() > 0;
}

bool engine::any_runnable() const {
    return std::any_of(active_.begin(), active_.end(), [this](const std::unique_ptr<sequence> & s) { return runnable(*s); });
}

void engine::finish(sequence & s, finish_reason reason, const std::string & code, const std::string & message) {
    event e;
    e.id            = s.req->id;
    e.done          = true;
    e.reason        = reason;
    e.error_code    = code;
    e.error_message = message;
    e.n_prompt      = (uint32_t) s.req->prompt.size();
    e.n_generated   = s.n_generated;
    if (s.text && reason != finish_reason::error) {
        std::string tail = s.held + s.text->flush();   // no stop string can complete any more
        e.text           = std::move(tail);
    }
    e.logits     = std::move(s.logits);
    e.scores     = std::move(s.scores);
    e.n_cached   = s.n_cached;
    e.n_drafted  = s.n_drafted;
    e.n_accepted = s.n_accepted;
    emit(std::move(e));
    // The slot keeps the prompt's whole prefilled chunks for the next request that shares them;
    // generated tokens went in one by one (another kernel path) and are not kept.
    slot_cache &   c    = slot_cache_[s.slot];
    const uint32_t keep = reason == finish_reason::error ? 0 : s.n_prefilled / chunk_ * chunk_;
    c.tokens.assign(s.req->prompt.begin(), s.req->prompt.begin() + keep);
    c.last_used = ++use_clock_;
    free_slots_.push_back(s.slot);
    s.req.reset();   // marks the sequence as finished
}

void engine::publish_stats(double busy, bool stepped) {
    uint64_t used = 0;
    for (auto & s : active_) used += s->n_past;
    std::lock_guard<std::mutex> lock(mu_);
    if (stepped) stats_.steps += 1;
    stats_.busy_seconds += busy;
    stats_.active  = (uint32_t) active_.size();
    stats_.kv_used = used;
}

bool engine::filter_stop(sequence & s, std::string text, std::string & out) {
    const std::vector<std::string> & stops = s.req->stop;
    if (stops.empty()) {
        out += text;
        return false;
    }
    std::string buf = std::move(s.held);
    buf += text;
    s.held.clear();
    // the earliest complete stop string wins
    size_t cut = std::string::npos;
    for (const std::string & st : stops) {
        const size_t at = buf.find(st);
        if (at != std::string::npos && at < cut) cut = at;
    }
    if (cut != std::string::npos) {
        out.append(buf, 0, cut);
        return true;
    }
    // hold back the longest tail of buf that is a proper prefix of some stop string
    size_t hold = 0;
    for (const std::string & st : stops) {
        for (size_t k = std::min(st.size() - 1, buf.size()); k > hold; --k) {
            if (buf.compare(buf.size() - k, k, st, 0, k) == 0) {
                hold = k;
                break;
            }
        }
    }
    out.append(buf, 0, buf.size() - hold);
    s.held.assign(buf, buf.size() - hold, hold);
    return false;
}

void engine::end_unstarted(const request & r, finish_reason reason, const std::string & code, const std::string & message) {
    event e;
    e.id            = r.id;
    e.done          = true;
    e.reason        = reason;
    e.error_code    = code;
    e.error_message = message;
    e.n_prompt      = (uint32_t) r.prompt.size();
    emit(std::move(e));
}

uint32_t engine::take_slot(const request & r, uint32_t & n_reused) {
    // Reusable: whole chunks only (chunk boundaries stay where they would be without reuse, so
    // the result does not depend on what the cache held), and at least the prompt's last token
    // (or, for scoring, every scored position) must still be computed.
    uint32_t limit = (uint32_t) r.prompt.size() - 1;
    if (r.kind == request_kind::score) limit = std::min<uint32_t>(limit, r.score_from - 1);
    if (r.kind == request_kind::evaluate && r.all_logits) limit = 0;   // every row is wanted
    size_t   best     = 0;
    uint32_t best_len = 0;
    for (size_t i = 0; i < free_slots_.size(); ++i) {
        const slot_cache & c     = slot_cache_[free_slots_[i]];
        uint32_t           n     = 0;
        const uint32_t     max_n = std::min<uint32_t>((uint32_t) c.tokens.size(), limit);
        while (n < max_n && c.tokens[n] == r.prompt[n]) ++n;
        n                    = n / chunk_ * chunk_;
        const slot_cache & b = slot_cache_[free_slots_[best]];
        if (n > best_len || (n == best_len && c.last_used < b.last_used)) {
            best     = i;
            best_len = n;
        }
    }
    const uint32_t slot = free_slots_[best];
    free_slots_.erase(free_slots_.begin() + (ptrdiff_t) best);
    slot_cache_[slot].tokens.clear();   // being overwritten from n_reused on
    n_reused = best_len;
    return slot;
}

void engine::run() {
    std::vector<std::shared_ptr<request>> unstarted;
    while (admit(unstarted)) {
        for (auto & r : unstarted) end_unstarted(*r, finish_reason::abort, {}, {});
        unstarted.clear();
        for (auto & s : active_)
            if (s->req && s->req->cancelled.load()) finish(*s, finish_reason::abort);
        drop_finished();

        plan_step();
        if (step_.empty()) {
            publish_stats(0.0, false);
            notify();
            continue;   // nothing runnable after all (credit withdrawn meanwhile): wait again
        }
        const bool   decoding_only = std::none_of(step_.begin(), step_.end(), [](const step_entry & e) { return e.prefill; });
        const double dt            = run_step();
        if (decoding_only) cost_.add((uint32_t) batch_.tokens.size(), dt);
        drop_finished();
        release_idle_drafters();
        publish_stats(dt, true);
        if (active_.empty()) decoder_->pause();
        notify();
    }
    end_all_disposed();
}

bool engine::admit(std::vector<std::shared_ptr<request>> & unstarted) {
    std::unique_lock<std::mutex> lock(mu_);
    auto                         cancelled_waiting = [&] {
        return std::any_of(queue_.begin(), queue_.end(), [](const std::shared_ptr<request> & q) { return q->cancelled.load(); });
    };
    cv_.wait(lock, [&] { return stop_ || (!queue_.empty() && !free_slots_.empty()) || any_runnable() || cancelled_waiting(); });
    if (stop_) return false;
    // requests cancelled while waiting for a slot end without taking one
    for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancelled.load()) {
            unstarted.push_back(std::move(*it));
            it = queue_.erase(it);
        } else ++it;
    }
    // waiting requests go into free slots, first come first served
    while (!queue_.empty() && !free_slots_.empty()) {
        auto s = std::make_unique<sequence>();
        s->req = std::move(queue_.front());
        queue_.pop_front();
        s->slot   = take_slot(*s->req, s->n_cached);
        s->n_past = s->n_prefilled = s->n_cached;
        stats_.tokens_cached += s->n_cached;
        s->smp = std::make_unique<sampler>(s->req->sampling);
        s->smp->prime(s->req->prompt.data(), s->req->prompt.size());
        if (s->req->kind == request_kind::generate) s->text = std::make_unique<stream_decoder>(model_->vocab);
        const speculation_params & sp = s->req->speculation;
        if (s->req->kind == request_kind::generate && sp.kind != speculation_params::predictor::none) {
            s->history = s->req->prompt;
            if (sp.kind == speculation_params::predictor::draft && !s->smp->greedy()) {
                // the draft's guesses are drawn with the request's filters but no penalties (its
                // distribution q is then known exactly), from a stream of its own
                sampler_params dp     = s->req->sampling;
                dp.repetition_penalty = 1.0f;
                dp.presence_penalty = dp.frequency_penalty = 0.0f;
                dp.want_logprobs                           = false;
                dp.seed ^= 0x5851f42d4c957f2dull;
                s->draft_smp = std::make_unique<sampler>(dp);
            }
        }
        active_.push_back(std::move(s));
    }
    stats_.queued = (uint32_t) queue_.size();
    return true;
}

void engine::drop_finished() {
    active_.erase(std::remove_if(active_.begin(), active_.end(), [](const std::unique_ptr<sequence> & s) { return !s->req; }),
                  active_.end());
}

void engine::plan_step() {
    // One batch: the decoding sequences' next tokens first, then prompt chunks in the room left.
    // Decoding rows that outnumber the batch take turns (the next step starts where this one
    // stopped), and a prompt that found no room in the last step gets a chunk's room in this one:
    // with hundreds of streams decoding, a new request would otherwise wait for them to finish
    // before its first token.
    const decoder_params & p = decoder_->params();
    batch_.clear();
    step_.clear();
    uint32_t     budget     = p.n_batch;
    const size_t decode_max = prompt_starved_ ? p.n_batch - chunk_ : p.n_batch;
    const size_t n_active   = active_.size();
    size_t       k          = 0;
    for (; k < n_active && step_.size() < decode_max; ++k) {
        sequence & s = *active_[(decode_from_ + k) % n_active];
        if (s.has_pending && s.req->credit.load() > 0) {
            step_.push_back({ &s, 1, false, batch::logits::last });
            --budget;
        }
    }
    decode_from_ = n_active > 0 ? (decode_from_ + k) % n_active : 0;
    // Speculating sequences' guesses take the room a waiting prompt's chunk does not need. Each
    // guess is a one-token segment of its own, as a step of its own would compute it (verify.h).
    const bool prompt_pending = std::any_of(active_.begin(), active_.end(), [](const std::unique_ptr<sequence> & q) {
        return q->req && q->n_prefilled < q->req->prompt.size();
    });
    predict(budget - (prompt_pending ? std::min(budget, chunk_) : 0));
    step_.erase(std::remove_if(step_.begin(), step_.end(), [](const step_entry & e) { return !e.s->req; }),
                step_.end());   // failed drafting
    for (step_entry & e : step_) {
        sequence & s = *e.s;
        batch_.add_segment(s.slot, s.n_past, &s.pending, 1, batch::logits::last);
        for (uint32_t i = 0; i < s.guesses.size(); ++i) batch_.add_segment(s.slot, s.n_past + 1 + i, &s.guesses[i], 1, batch::logits::last);
        if (s.guesses.empty()) continue;
        e.n      = 1 + (uint32_t) s.guesses.size();
        e.want   = batch::logits::all;
        e.verify = true;
        budget -= (uint32_t) s.guesses.size();
    }
    // Prompts go in chunks that end at multiples of k_prefill_chunk positions, whatever else is in
    // the batch: a sequence's numbers then never depend on its neighbours (ggml's attention kernel
    // takes another path for many query rows than for few), and a long prompt delays the other
    // streams' next token by one chunk, not its whole prefill. With no stream decoding in this
    // step, further whole chunks of the same prompt join its segment while the batch has room (a
    // lone prompt then prefills at full batch width): ggml's attention computes a row the same in
    // a segment of 128 rows as in one of 512 (its tiled kernel, taken from 64 rows up; checked to
    // the bit by the tests), so the numbers do not change. A final partial chunk stays a segment
    // of its own: fewer rows may take the other kernel.
    const uint32_t chunk          = chunk_;
    const bool     merge          = step_.empty();
    bool           prompt_waiting = false, prompt_in = false;
    for (auto & s : active_) {
        if (!s->req) continue;
        const request & r = *s->req;
        if (s->n_prefilled >= r.prompt.size()) continue;
        uint32_t n = std::min<uint32_t>((uint32_t) r.prompt.size() - s->n_prefilled, chunk - s->n_prefilled % chunk);
        if (n > budget) {   // next step: a chunk is never cut short by the batch's room
            prompt_waiting = true;
            continue;
        }
        prompt_in = true;
        while (merge && n % chunk == 0 && s->n_prefilled + n + chunk <= r.prompt.size() && n + chunk <= budget) n += chunk;
        const bool          last_chunk = s->n_prefilled + n == r.prompt.size();
        const batch::logits want = (r.kind == request_kind::evaluate && r.all_logits) || r.kind == request_kind::score ? batch::logits::all
            : last_chunk                                                                                               ? batch::logits::last
                         : batch::logits::none;
        batch_.add_segment(s->slot, s->n_past, r.prompt.data() + s->n_prefilled, n, want);
        step_.push_back({ s.get(), n, true, want });
        budget -= n;
    }
    prompt_starved_ = prompt_waiting && !prompt_in;
}

double engine::run_step() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        step_reqs_.clear();
        for (auto & e : step_) step_reqs_.push_back(e.s->req.get());
        abort_step_.store(stop_ || std::all_of(step_reqs_.begin(), step_reqs_.end(), [](request * q) { return q->cancelled.load(); }));
    }
    const auto    t0 = std::chrono::steady_clock::now();
    decode_status st = decode_status::ok;
    std::string   err_code, err_msg;
    try {
        st = decoder_->decode(batch_, logits_);
    } catch (const error & e) {
        err_code = e.code();
        err_msg  = e.what();
    } catch (const std::exception & e) {
        err_code = codes::internal;
        err_msg  = e.what();
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    {
        std::lock_guard<std::mutex> lock(mu_);
        step_reqs_.clear();
    }

    if (!err_code.empty()) {
        for (auto & e : step_) finish(*e.s, finish_reason::error, err_code, err_msg);
    } else if (st == decode_status::ok) {
        // An allocation that fails while sampling or detokenizing (memory exhausted) ends this
        // step's requests with an error; thrown out of the engine thread it would end the process.
        try {
            apply_step();
        } catch (const std::exception & e) {
            const bool oom = dynamic_cast<const std::bad_alloc *>(&e) != nullptr;
            for (auto & x : step_) {
                if (x.s->req)
                    finish(*x.s, finish_reason::error, oom ? codes::out_of_memory : codes::internal, oom ? "out of memory" : e.what());
            }
        }
    }   // aborted: nothing advanced; cancelled sequences finish in the next round, others retry
    return dt;
}

void engine::apply_step() {
    const uint32_t n_vocab         = model_->hp.n_vocab;
    size_t         row             = 0;
    uint64_t       n_prompt_tokens = 0, n_gen_tokens = 0;
    uint64_t       n_drafted = 0, n_accepted = 0;
    for (auto & e : step_) {
        sequence & s = *e.s;
        if (e.verify) {
            const uint32_t accepted = s.n_accepted;
            n_gen_tokens += on_verify(s, e.n, logits_.data() + row * n_vocab);
            row += e.n;
            n_drafted += e.n - 1;
            n_accepted += s.n_accepted - accepted;
            continue;
        }
        s.n_past += e.n;
        if (e.prefill) {
            s.n_prefilled += e.n;
            n_prompt_tokens += e.n;
        } else {
            s.has_pending = false;
        }
        const size_t n_rows = e.want == batch::logits::all ? e.n : e.want == batch::logits::last ? 1 : 0;
        float *      rows   = logits_.data() + row * n_vocab;   // the sampler works on them in place
        row += n_rows;
        if (n_rows == 0) continue;
        switch (s.req->kind) {
        case request_kind::score: on_score(s, e, rows); break;
        case request_kind::evaluate: on_evaluate(s, n_rows, rows); break;
        case request_kind::generate:
            on_generate(s, rows + (n_rows - 1) * n_vocab);
            ++n_gen_tokens;
            break;
        }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.tokens_prompt += n_prompt_tokens;
    stats_.tokens_generated += n_gen_tokens;
    stats_.tokens_drafted += n_drafted;
    stats_.tokens_accepted += n_accepted;
}

void engine::on_score(sequence & s, const step_entry & e, const float * rows) {
    const request & r       = *s.req;
    const uint32_t  n_vocab = model_->hp.n_vocab;
    // row j of this chunk predicts prompt[first + j + 1]
    const uint32_t first = s.n_prefilled - e.n;
    for (uint32_t j = 0; j < e.n; ++j) {
        const uint32_t target = first + j + 1;
        if (target < r.score_from || target >= r.prompt.size()) continue;
        const float * row_p = rows + (size_t) j * n_vocab;
        float         mx    = row_p[0];
        for (uint32_t v = 1; v < n_vocab; ++v) mx = std::max(mx, row_p[v]);
        double sum = 0.0;
        for (uint32_t v = 0; v < n_vocab; ++v) sum += std::exp((double) (row_p[v] - mx));
        s.scores.push_back(row_p[r.prompt[target]] - mx - (float) std::log(sum));
    }
    if (s.n_prefilled == r.prompt.size()) finish(s, finish_reason::stop);
}

void engine::on_evaluate(sequence & s, size_t n_rows, const float * rows) {
    const request & r       = *s.req;
    const uint32_t  n_vocab = model_->hp.n_vocab;
    if (r.all_logits) s.logits.insert(s.logits.end(), rows, rows + n_rows * n_vocab);
    if (s.n_prefilled == r.prompt.size()) {
        if (!r.all_logits) s.logits.assign(rows + (n_rows - 1) * n_vocab, rows + n_rows * n_vocab);
        finish(s, finish_reason::stop);
    }
}

void engine::on_generate(sequence & s, float * row) {
    request &       r = *s.req;
    token_logprob   lp;
    token_logprob * lpp    = r.sampling.want_logprobs ? &lp : nullptr;
    const uint32_t  tok    = s.smp->sample(row, model_->hp.n_vocab, lpp);
    finish_reason   reason = finish_reason::stop;
    event           ev;
    ev.id           = r.id;
    const bool more = push_token(s, tok, lpp, ev, s.n_past, reason);
    end_tokens(s, std::move(ev), more, reason);
}

uint32_t engine::on_verify(sequence & s, uint32_t n_rows, float * rows) {
    request &      r       = *s.req;
    const uint32_t n_vocab = model_->hp.n_vocab;
    const uint32_t k       = n_rows - 1;   // guesses
    const uint32_t n_past  = s.n_past;     // the pending token's position
    const uint32_t n_hist  = (uint32_t) s.history.size();
    s.has_pending          = false;
    event ev;
    ev.id                = r.id;
    finish_reason reason = finish_reason::stop;
    bool          more   = true;
    uint32_t      i = 0, kept_n = 0;
    // Row i is the model's next-token distribution after the pending token and guesses 0..i-1:
    // the tokens go out in order while the guesses are kept; the first one replaced, or the row
    // after the last guess, gives the step's last token.
    for (;; ++i) {
        float *         row = rows + (size_t) i * n_vocab;
        token_logprob   lp;
        token_logprob * lpp  = r.sampling.want_logprobs ? &lp : nullptr;
        bool            kept = false;
        const uint32_t  tok  = i < k
            ? verify_guess(*s.smp, row, n_vocab, s.guesses[i], s.guess_q.empty() ? nullptr : &s.guess_q[i], lpp, kept)
            : s.smp->sample(row, n_vocab, lpp);
        kept_n += kept;
        more = push_token(s, tok, lpp, ev, n_past + i + 1, reason);
        if (!more || !kept) break;
    }
    s.n_past = n_past + i + 1;   // the pending token and the guesses kept
    s.n_drafted += k;
    s.n_accepted += kept_n;
    // The draft's cache holds the guesses it was fed (all but its last): those kept stay valid.
    if (s.drafter) s.draft_past = std::min(s.draft_past, n_hist + kept_n);
    // how often a guess is kept: each kept one a success, the first one not kept a failure
    for (uint32_t j = 0; j < kept_n; ++j) s.keep_rate += 0.1 * (1.0 - s.keep_rate);
    if (kept_n < k) s.keep_rate -= 0.1 * s.keep_rate;
    const uint32_t emitted = (uint32_t) ev.tokens.size();
    end_tokens(s, std::move(ev), more, reason);
    return emitted;
}

bool engine::push_token(sequence & s, uint32_t tok, token_logprob * lp, event & ev, uint32_t n_past, finish_reason & reason) {
    request & r = *s.req;
    if (tok == (uint32_t) model_->vocab->eos_id() && !r.ignore_eos) {
        reason = finish_reason::stop;
        return false;
    }
    ++s.n_generated;
    if (r.speculation.kind != speculation_params::predictor::none) s.history.push_back(tok);
    ev.tokens.push_back(tok);
    if (lp) ev.logprobs.push_back(std::move(*lp));
    const bool stopped = filter_stop(s, s.text->push(tok), ev.text);
    r.credit.fetch_sub(1);
    if (stopped) {
        s.held.clear();
        s.text.reset();
        reason = finish_reason::stop;
        return false;
    }
    if (s.n_generated >= r.max_tokens || n_past >= decoder_->params().n_ctx) {
        reason = finish_reason::length;
        return false;
    }
    s.pending = tok;
    return true;
}

void engine::end_tokens(sequence & s, event && ev, bool more, finish_reason reason) {
    if (!ev.tokens.empty()) emit(std::move(ev));
    if (more) s.has_pending = true;
    else finish(s, reason);
}

void engine::predict(uint32_t room) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        abort_step_.store(stop_);   // a stale flag from a cancelled step must not stop the draft
    }
    std::vector<std::pair<draft_model *, std::vector<draft_job>>> groups;   // per draft model
    std::vector<sequence *>                                       asked;    // the sequences with a job
    for (step_entry & e : step_) {
        sequence & s = *e.s;
        s.guesses.clear();
        s.guess_q.clear();
        const request &            r  = *s.req;
        const speculation_params & sp = r.speculation;
        if (sp.kind == speculation_params::predictor::none) continue;
        // never past the consumer's credit, max_tokens or the context, counting the step's own token
        // As many guesses as pay for themselves (verify.h), by how often they were kept and what a
        // guess costs next to a step; when none would, one every fourth step keeps the rate
        // current. Measured costs are timings: with sampling, where the count decides which
        // random numbers are drawn, a fixed cost keeps the same seed giving the same tokens.
        double cost = step_cost::assumed_row_ratio;
        if (s.smp->greedy()) {
            cost = cost_.row_ratio();
            if (sp.kind == speculation_params::predictor::draft && s.drafter && cost_.one_row() > 0.0)
                cost += s.drafter->seconds_per_guess() / cost_.one_row();
        }
        uint32_t want = best_guess_count(s.keep_rate, cost, sp.max_draft);
        if (want == 0 && ++s.n_unsure % 4 == 0) want = 1;
        const int64_t cap = std::min<int64_t>({ (int64_t) want, (int64_t) room, r.credit.load() - 1,
                                                (int64_t) r.max_tokens - s.n_generated - 1,
                                                (int64_t) decoder_->params().n_ctx - s.n_past - 1 });
        if (cap <= 0) continue;
        if (sp.kind == speculation_params::predictor::lookup) {
            lookup_guesses(s.history.data(), s.history.size(), sp.ngram_min, sp.ngram_max, (uint32_t) cap, s.guesses);
            room -= (uint32_t) s.guesses.size();
            continue;
        }
        try {
            if (!s.drafter) s.drafter = &drafter_for(sp.draft);
        } catch (const error & err) {
            finish(s, finish_reason::error, err.code(), err.what());
            continue;
        } catch (const std::exception & err) {
            const bool oom = dynamic_cast<const std::bad_alloc *>(&err) != nullptr;
            finish(s, finish_reason::error, oom ? codes::out_of_memory : codes::internal, err.what());
            continue;
        }
        const uint32_t n_hist = (uint32_t) s.history.size();
        if (n_hist > s.drafter->n_ctx()) continue;   // past the draft's context: no guesses
        if (s.draft_rest > 0) {                      // a draft that had nothing to say rests; it catches up in one pass later
            --s.draft_rest;
            continue;
        }
        // The draft's cache is good for the history it was fed; past it lie guesses (all of them
        // after a step that was aborted). The last token is fed again in any case: its row guesses.
        s.draft_past = std::min(s.draft_past, n_hist - 1);
        draft_job j;
        j.slot           = s.slot;
        j.hist           = s.history.data();
        j.n_hist         = n_hist;
        j.past           = &s.draft_past;
        j.max_n          = (uint32_t) std::min<int64_t>(cap, s.drafter->n_ctx() - n_hist + 1);
        j.min_confidence = sp.min_confidence;
        j.smp            = s.draft_smp.get();
        j.out            = &s.guesses;
        j.q              = &s.guess_q;
        room -= j.max_n;
        asked.push_back(&s);
        auto g = std::find_if(groups.begin(), groups.end(), [&](const auto & x) { return x.first == s.drafter; });
        if (g == groups.end()) groups.emplace_back(s.drafter, std::vector<draft_job>{ j });
        else g->second.push_back(j);
    }
    for (auto & [d, jobs] : groups) {
        try {
            const auto t0 = std::chrono::steady_clock::now();
            d->run(jobs, &abort_step_);
            size_t guesses = 0;
            for (const draft_job & j : jobs) guesses += j.out->size();
            d->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), guesses);
        } catch (const std::exception & err) {
            const error * ge  = dynamic_cast<const error *>(&err);
            const bool    oom = dynamic_cast<const std::bad_alloc *>(&err) != nullptr;
            for (step_entry & e : step_) {
                if (e.s->req && e.s->drafter == d)
                    finish(*e.s, finish_reason::error, ge ? ge->code() : oom ? codes::out_of_memory : codes::internal, err.what());
            }
        }
    }
    // A draft without a confident guess cost a forward pass for nothing: it sits out 1, 2, 4, ...
    // up to 16 steps while that lasts.
    for (sequence * s : asked) {
        s->draft_idle = s->guesses.empty() ? std::min<uint32_t>(16, std::max<uint32_t>(1, s->draft_idle * 2)) : 0;
        s->draft_rest = s->draft_idle;
    }
}

draft_model & engine::drafter_for(const std::shared_ptr<const model> & m) {
    for (auto & d : drafters_)
        if (d->mdl() == m) return *d;
    drafters_.push_back(std::make_unique<draft_model>(m, *decoder_));
    return *drafters_.back();
}

void engine::release_idle_drafters() {
    // A draft model's decoder (its KV cache and compute buffers) is made the first time a request
    // drafts with that model (its setup takes a good part of a second) and kept while the draft's
    // Model is loaded; once that is disposed and no running request uses it, it goes.
    auto in_use = [&](const draft_model * d) {
        return std::any_of(active_.begin(), active_.end(), [&](const std::unique_ptr<sequence> & s) { return s->drafter == d; });
    };
    drafters_.erase(std::remove_if(drafters_.begin(), drafters_.end(),
                                   [&](const std::unique_ptr<draft_model> & d) { return d->orphaned() && !in_use(d.get()); }),
                    drafters_.end());
}

void engine::end_all_disposed() {
    for (auto & s : active_)
        if (s->req) finish(*s, finish_reason::error, codes::disposed, "the model was disposed during generation");
    active_.clear();
    std::deque<std::shared_ptr<request>> waiting;
    {
        std::lock_guard<std::mutex> lock(mu_);
        waiting.swap(queue_);
    }
    for (auto & r : waiting) end_unstarted(*r, finish_reason::error, codes::disposed, "the model was disposed before the request started");
    {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.active = 0;
        stats_.queued = 0;
    }
    notify();
}

}   // namespace gpt2
