#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace gpt2 {

uint32_t sampler::argmax(const float * logits, uint32_t n_vocab) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n_vocab; ++i)
        if (logits[i] > logits[best]) best = i;
    return best;
}

void sampler::prime(const uint32_t * ids, size_t n) {
    for (size_t i = 0; i < n; ++i) accept(ids[i]);
}

void sampler::accept(uint32_t id) {
    if (p_.penalty_window == 0) return;
    const bool penalties = p_.repetition_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f;
    if (!penalties) return;
    window_.push_back(id);
    ++counts_[id];
    if (window_.size() > p_.penalty_window) {
        const uint32_t old = window_.front();
        window_.pop_front();
        if (--counts_[old] == 0) counts_.erase(old);
    }
}

void sampler::apply_bias_and_penalties(float * logits, uint32_t n_vocab) const {
    for (const auto & [id, bias] : p_.logit_bias)
        if (id < n_vocab) logits[id] += bias;
    for (const auto & [id, count] : counts_) {
        float & l = logits[id];
        if (p_.repetition_penalty != 1.0f) l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
        l -= p_.presence_penalty + p_.frequency_penalty * (float) count;
    }
    // Opposite infinities (a +Infinity and a -Infinity bias of one id, or a banned token's
    // -Infinity times a zero penalty) leave NaN, which the orderings below cannot take: such a
    // token counts as banned.
    for (const auto & [id, bias] : p_.logit_bias)
        if (id < n_vocab && std::isnan(logits[id])) logits[id] = -INFINITY;
    for (const auto & [id, count] : counts_)
        if (std::isnan(logits[id])) logits[id] = -INFINITY;
}

// Scratch for the candidates (logit, id): 400 KB for GPT-2's vocabulary. One per thread (the
// engine's samples every sequence in turn) rather than one per sampler: a request's own would be
// allocated and freed with each request, churning malloc's heap (docs/reliability.md, soak).
static std::vector<std::pair<float, uint32_t>> & candidates() {
    static thread_local std::vector<std::pair<float, uint32_t>> scratch;
    return scratch;
}

size_t sampler::filter(const float * logits, uint32_t n_vocab) {
    std::vector<std::pair<float, uint32_t>> & cand = candidates();
    // Candidates (scaled logit, id). Only top-p needs them in order, and then only the prefix it
    // keeps: sorting all 50257 every token cost more than the forward pass of a small model, so
    // nothing here sorts more than it must.
    cand.resize(n_vocab);
    for (uint32_t i = 0; i < n_vocab; ++i) cand[i] = { logits[i] / p_.temperature, i };
    // descending, ties by ascending id: deterministic
    auto by_value = [](const std::pair<float, uint32_t> & a, const std::pair<float, uint32_t> & b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    size_t n = n_vocab;
    if (p_.top_k > 0 && p_.top_k < n_vocab) {
        std::nth_element(cand.begin(), cand.begin() + (p_.top_k - 1), cand.end(), by_value);
        n = p_.top_k;
    }
    // softmax over the kept candidates (a banned token's -inf gives probability 0); the
    // candidates' values become their unnormalized probabilities
    float max_l = cand[0].first;
    for (size_t i = 1; i < n; ++i) max_l = std::max(max_l, cand[i].first);
    if (!std::isfinite(max_l)) {
        // A bias of +Infinity (or a tiny temperature) left an infinite logit, or -Infinity
        // banned every token: without a finite maximum there is no softmax, so the choice is
        // greedy (the lowest id among the largest; 0 when all are banned), as the one
        // candidate left.
        cand[0] = { 1.0f, argmax(logits, n_vocab) };
        return 1;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        cand[i].first = std::exp(cand[i].first - max_l);
        sum += cand[i].first;
    }
    if (p_.min_p > 0.0f) {
        // the most likely candidate has value exp(0) = 1, so it is always kept
        const float floor_v = std::min(p_.min_p, 1.0f);
        size_t      keep    = 0;
        for (size_t i = 0; i < n; ++i)
            if (cand[i].first >= floor_v) cand[keep++] = cand[i];
        n   = keep;
        sum = 0.0;
        for (size_t i = 0; i < n; ++i) sum += cand[i].first;
    }
    if (p_.top_p < 1.0f) {
        // The smallest most-likely prefix reaching top_p, by quickselect on the mass: halve the
        // range holding the boundary (nth_element partitions it) until it is small, then sort
        // just that part. O(n) even when the prefix is most of the vocabulary.
        const double target = p_.top_p * sum;
        size_t       lo = 0, hi = n;   // [0, lo) is in the prefix, [hi, n) is not
        double       before = 0.0;     // mass of [0, lo)
        while (hi - lo > 64) {
            const size_t mid = lo + (hi - lo) / 2;
            std::nth_element(cand.begin() + lo, cand.begin() + mid, cand.begin() + hi, by_value);
            double mass = 0.0;
            for (size_t i = lo; i < mid; ++i) mass += cand[i].first;
            if (before + mass >= target) hi = mid;
            else {
                before += mass;
                lo = mid;
            }
        }
        std::sort(cand.begin() + lo, cand.begin() + hi, by_value);
        size_t keep = hi;   // rounding may leave the target unreached: keep what is left
        double cum  = before;
        for (size_t i = lo; i < hi; ++i) {
            cum += cand[i].first;
            if (cum >= target) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    return n;
}

uint32_t sampler::draw(const std::pair<float, uint32_t> * cand, size_t n) {
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += cand[i].first;
    const double r   = rng_.uniform() * total;
    double       acc = 0.0;
    for (size_t i = 0; i < n; ++i) {
        acc += cand[i].first;
        if (r < acc) return cand[i].second;
    }
    return cand[n - 1].second;
}

void sampler::distribution(const float * logits, uint32_t n_vocab, std::vector<std::pair<float, uint32_t>> & out) {
    out.clear();
    if (greedy()) {
        out.emplace_back(1.0f, argmax(logits, n_vocab));
        return;
    }
    const size_t n    = filter(logits, n_vocab);
    const auto & cand = candidates();
    double       sum  = 0.0;
    for (size_t i = 0; i < n; ++i) sum += cand[i].first;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.emplace_back((float) (cand[i].first / sum), cand[i].second);
}

void sampler::logprob(const float * logits, uint32_t n_vocab, uint32_t chosen, token_logprob & lp) const {
    // log-softmax of the (biased, penalized) logits at temperature 1
    float max_l = logits[0];
    for (uint32_t i = 1; i < n_vocab; ++i) max_l = std::max(max_l, logits[i]);
    double sum = 0.0;
    for (uint32_t i = 0; i < n_vocab; ++i) sum += std::exp((double) (logits[i] - max_l));
    const float log_z = max_l + (float) std::log(sum);
    lp.logprob        = logits[chosen] - log_z;
    lp.top.clear();
    if (p_.logprobs > 0) {
        std::vector<std::pair<float, uint32_t>> & cand = candidates();
        const uint32_t                            k    = std::min<uint32_t>(p_.logprobs, n_vocab);
        cand.resize(n_vocab);
        for (uint32_t i = 0; i < n_vocab; ++i) cand[i] = { logits[i], i };
        std::partial_sort(cand.begin(), cand.begin() + k, cand.end(),
                          [](const std::pair<float, uint32_t> & a, const std::pair<float, uint32_t> & b) {
                              return a.first > b.first || (a.first == b.first && a.second < b.second);
                          });
        for (uint32_t i = 0; i < k; ++i) lp.top.emplace_back(cand[i].second, cand[i].first - log_z);
    }
}

uint32_t sampler::sample(float * logits, uint32_t n_vocab, token_logprob * lp) {
    apply_bias_and_penalties(logits, n_vocab);
    const uint32_t chosen = greedy() ? argmax(logits, n_vocab) : draw(candidates().data(), filter(logits, n_vocab));
    if (lp) logprob(logits, n_vocab, chosen, *lp);
    accept(chosen);
    return chosen;
}

}   // namespace gpt2
