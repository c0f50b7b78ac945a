#include "engine/predictor.h"

#include <algorithm>
#include <cmath>

namespace gpt2 {

void lookup_guesses(const uint32_t * hist, size_t n_hist, uint32_t ngram_min, uint32_t ngram_max, uint32_t max_n,
                    std::vector<uint32_t> & out) {
    for (size_t n = std::min<size_t>(ngram_max, n_hist - 1); n >= ngram_min && n >= 1; --n) {
        const uint32_t * tail = hist + n_hist - n;
        // the latest occurrence that ends before the tail itself does, so that something follows it
        for (size_t at = n_hist - n; at-- > 0;) {
            if (!std::equal(tail, tail + n, hist + at)) continue;
            const size_t from = at + n;
            const size_t take = std::min<size_t>(max_n, n_hist - from);
            out.insert(out.end(), hist + from, hist + from + take);
            return;
        }
    }
}

namespace {

decoder_params draft_params(const model & m, const decoder_params & target) {
    decoder_params p  = target;
    p.n_ctx           = std::min(target.n_ctx, m.hp.n_ctx);
    p.batch_invariant = true;   // its guesses then do not depend on the other sequences'
    return p;
}

// Chunks of the draft's catch-up end at multiples of this many positions whatever else is in the
// batch (as the target's prompt chunks, engine.cpp): a sequence's guesses, and so its sampled
// output, then never depend on what runs beside it.
constexpr uint32_t k_catch_up_chunk = 128;

}   // namespace

draft_model::draft_model(std::shared_ptr<const model> m, const decoder & target)
    : model_(m), dec_(std::move(m), draft_params(*model_, target.params()), target.threadpool()) {}

bool draft_model::guess(draft_job & j, float * row) {
    const uint32_t n_vocab = model_->hp.n_vocab;
    uint32_t       tok     = 0;
    float          p       = 1.0f;
    if (!j.smp) {
        tok        = sampler::argmax(row, n_vocab);
        double sum = 0.0;   // softmax at temperature 1: the guess's probability
        for (uint32_t v = 0; v < n_vocab; ++v) sum += std::exp((double) (row[v] - row[tok]));
        p = (float) (1.0 / sum);
    } else {
        j.smp->prepare(row, n_vocab);
        j.smp->distribution(row, n_vocab, dist_);
        tok = j.smp->draw(dist_.data(), dist_.size());
        for (const auto & [q, id] : dist_)
            if (id == tok) p = q;
    }
    if (p < j.min_confidence) return false;
    j.out->push_back(tok);
    if (j.smp) j.q->push_back(dist_);
    return true;
}

bool draft_model::run(std::vector<draft_job> & jobs, const std::atomic<bool> * abort) {
    dec_.set_abort_flag(abort);
    const uint32_t        n_vocab = model_->hp.n_vocab;
    const uint32_t        n_ctx   = dec_.params().n_ctx;
    std::vector<bool>     going(jobs.size(), true);   // still guessing
    std::vector<uint32_t> fed;                        // per segment of the batch: tokens fed
    std::vector<size_t>   owner;                      // per segment: its job
    auto                  fail = [&] {
        for (draft_job & j : jobs) {
            j.out->clear();
            if (j.q) j.q->clear();
        }
        return false;
    };
    auto decode = [&]() -> bool {
        if (dec_.decode(batch_, logits_) != decode_status::ok) return false;
        size_t row = 0;
        for (size_t s = 0; s < owner.size(); ++s) {
            draft_job & j = jobs[owner[s]];
            *j.past += fed[s];
            if (*j.past < j.n_hist) continue;   // still catching up: no row
            if (!guess(j, logits_.data() + row++ * n_vocab) || j.out->size() >= j.max_n || *j.past >= n_ctx) going[owner[s]] = false;
        }
        return true;
    };
    // 1. catch up: the tokens of hist the cache lacks (a new sequence's whole prompt; after a
    //    step, the accepted guesses and the model's own token), in chunks; the last row guesses
    for (bool more = true; more;) {
        more = false;
        batch_.clear();
        fed.clear();
        owner.clear();
        uint32_t budget = dec_.params().n_batch;
        for (size_t i = 0; i < jobs.size(); ++i) {
            draft_job & j = jobs[i];
            if (*j.past >= j.n_hist) continue;
            const uint32_t n = std::min(j.n_hist - *j.past, k_catch_up_chunk - *j.past % k_catch_up_chunk);
            if (n > budget) {
                more = true;
                continue;
            }
            const bool last = *j.past + n == j.n_hist;
            batch_.add_segment(j.slot, *j.past, j.hist + *j.past, n, last ? batch::logits::last : batch::logits::none);
            fed.push_back(n);
            owner.push_back(i);
            budget -= n;
            more = more || !last;
        }
        if (!owner.empty() && !decode()) return fail();
    }
    // 2. guess on, one token per sequence per pass
    for (;;) {
        batch_.clear();
        fed.clear();
        owner.clear();
        for (size_t i = 0; i < jobs.size(); ++i) {
            draft_job & j = jobs[i];
            if (!going[i] || j.out->empty()) continue;
            batch_.add_segment(j.slot, *j.past, &j.out->back(), 1, batch::logits::last);
            fed.push_back(1);
            owner.push_back(i);
        }
        if (owner.empty()) return true;
        if (!decode()) return fail();
    }
}

}   // namespace gpt2
