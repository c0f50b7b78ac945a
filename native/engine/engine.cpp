#include "engine/engine.h"

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
    e.logits   = std::move(s.logits);
    e.scores   = std::move(s.scores);
    e.n_cached = s.n_cached;
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
        const double dt = run_step();
        drop_finished();
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
            batch_.add_segment(s.slot, s.n_past, &s.pending, 1, batch::logits::last);
            step_.push_back({ &s, 1, false, batch::logits::last });
            --budget;
        }
    }
    decode_from_ = n_active > 0 ? (decode_from_ + k) % n_active : 0;
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
    for (auto & e : step_) {
        sequence & s = *e.s;
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
    request &      r = *s.req;
    token_logprob  lp;
    const bool     want_lp = r.sampling.want_logprobs;
    const uint32_t tok     = s.smp->sample(row, model_->hp.n_vocab, want_lp ? &lp : nullptr);
    if (tok == (uint32_t) model_->vocab->eos_id() && !r.ignore_eos) {
        finish(s, finish_reason::stop);
        return;
    }
    ++s.n_generated;
    event ev;
    ev.id = r.id;
    ev.tokens.push_back(tok);
    if (want_lp) ev.logprobs.push_back(std::move(lp));
    const bool stopped = filter_stop(s, s.text->push(tok), ev.text);
    r.credit.fetch_sub(1);
    emit(std::move(ev));
    if (stopped) {
        s.held.clear();
        s.text.reset();
        finish(s, finish_reason::stop);
        return;
    }
    if (s.n_generated >= r.max_tokens || s.n_past >= decoder_->params().n_ctx) {
        finish(s, finish_reason::length);
        return;
    }
    s.pending     = tok;
    s.has_pending = true;
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
