#include "engine/verify.h"

#include <algorithm>

namespace gpt2 {

namespace {

// Scratch per engine thread (as the sampler's candidates): the model's distribution, the
// residual, and q spread over the vocabulary.
struct verify_scratch {
    token_distribution p, residual;
    std::vector<float> q_dense;
};

verify_scratch & scratch() {
    static thread_local verify_scratch s;
    return s;
}

float probability_of(const token_distribution & d, uint32_t id) {
    for (const auto & [p, t] : d)
        if (t == id) return p;
    return 0.0f;
}

}   // namespace

uint32_t verify_guess(sampler & smp, float * row, uint32_t n_vocab, uint32_t guess, const token_distribution * q, token_logprob * lp,
                      bool & kept) {
    if (smp.greedy()) {
        const uint32_t tok = smp.sample(row, n_vocab, lp);
        kept               = tok == guess;
        return tok;
    }
    verify_scratch & s = scratch();
    smp.prepare(row, n_vocab);
    smp.distribution(row, n_vocab, s.p);
    const float p_guess = probability_of(s.p, guess);
    const float q_guess = q ? probability_of(*q, guess) : 1.0f;
    uint32_t    tok     = guess;
    kept                = q_guess > 0.0f && smp.uniform() * q_guess < p_guess;   // u < p/q
    if (!kept) {
        // the residual max(0, p − q) (its normalization is draw()'s)
        s.q_dense.assign(n_vocab, 0.0f);
        if (q) {
            for (const auto & [qp, t] : *q) s.q_dense[t] = qp;
        } else {
            s.q_dense[guess] = 1.0f;
        }
        s.residual.clear();
        for (const auto & [pp, t] : s.p)
            if (pp > s.q_dense[t]) s.residual.emplace_back(pp - s.q_dense[t], t);
        // p ≤ q everywhere only when p = q up to rounding; then p itself
        const token_distribution & from = s.residual.empty() ? s.p : s.residual;
        tok                             = smp.draw(from.data(), from.size());
    }
    if (lp) smp.logprob(row, n_vocab, tok, *lp);
    smp.accept(tok);
    return tok;
}

uint32_t best_guess_count(double p, double cost, uint32_t max_n) {
    uint32_t best       = 0;
    double   best_value = 1.0;   // no guess: one token per step
    double   expected = 1.0, p_k = 1.0;
    for (uint32_t k = 1; k <= max_n; ++k) {
        p_k *= p;
        expected += p_k;   // tokens a step yields: 1 + p + p² + ... + p^k
        const double value = expected / (1.0 + cost * k);
        if (value > best_value * (1.0 + 1e-9)) {
            best       = k;
            best_value = value;
        }
    }
    return best;
}

}   // namespace gpt2
