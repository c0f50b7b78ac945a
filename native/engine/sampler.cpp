#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace gpt2 {

uint32_t sampler::argmax(const float * logits, uint32_t n_vocab) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n_vocab; ++i) if (logits[i] > logits[best]) best = i;
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
    for (const auto & [id, bias] : p_.logit_bias) if (id < n_vocab) logits[id] += bias;
    for (const auto & [id, count] : counts_) {
        float & l = logits[id];
        if (p_.repetition_penalty != 1.0f) l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
        l -= p_.presence_penalty + p_.frequency_penalty * (float) count;
    }
}

uint32_t sampler::sample(float * logits, uint32_t n_vocab, token_logprob * lp) {
    apply_bias_and_penalties(logits, n_vocab);

    uint32_t chosen;
    if (p_.temperature <= 0.0f || p_.top_k == 1) {
        chosen = argmax(logits, n_vocab);
    } else {
        cand_.resize(n_vocab);
        for (uint32_t i = 0; i < n_vocab; ++i) cand_[i] = { logits[i] / p_.temperature, i };
        // descending logit, ties by ascending id: deterministic
        auto by_logit = [](const std::pair<float, uint32_t> & a, const std::pair<float, uint32_t> & b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        };
        size_t n = n_vocab;
        if (p_.top_k > 0 && p_.top_k < n_vocab) {
            std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
            n = p_.top_k;
        } else {
            std::sort(cand_.begin(), cand_.end(), by_logit);
        }
        // softmax over the kept candidates (a banned token's -inf gives probability 0)
        const float max_l = cand_[0].first;
        prob_.resize(n);
        double sum = 0.0;
        for (size_t i = 0; i < n; ++i) { prob_[i] = std::exp((double) (cand_[i].first - max_l)); sum += prob_[i]; }
        for (size_t i = 0; i < n; ++i) prob_[i] /= sum;
        if (p_.min_p > 0.0f) {
            const double floor_p = prob_[0] * p_.min_p;
            size_t keep = 1;
            while (keep < n && prob_[keep] >= floor_p) ++keep;
            n = keep;
        }
        if (p_.top_p < 1.0f) {
            double cum = 0.0;
            size_t keep = 0;
            while (keep < n) { cum += prob_[keep++]; if (cum >= p_.top_p) break; }
            n = keep;
        }
        double total = 0.0;
        for (size_t i = 0; i < n; ++i) total += prob_[i];
        const double r = rng_.uniform() * total;
        double acc = 0.0;
        chosen = cand_[n - 1].second;
        for (size_t i = 0; i < n; ++i) {
            acc += prob_[i];
            if (r < acc) { chosen = cand_[i].second; break; }
        }
    }

    if (lp) {
        // log-softmax of the (biased, penalized) logits at temperature 1
        float max_l = logits[0];
        for (uint32_t i = 1; i < n_vocab; ++i) max_l = std::max(max_l, logits[i]);
        double sum = 0.0;
        for (uint32_t i = 0; i < n_vocab; ++i) sum += std::exp((double) (logits[i] - max_l));
        const float log_z = max_l + (float) std::log(sum);
        lp->logprob = logits[chosen] - log_z;
        lp->top.clear();
        if (p_.logprobs > 0) {
            const uint32_t k = std::min<uint32_t>(p_.logprobs, n_vocab);
            cand_.resize(n_vocab);
            for (uint32_t i = 0; i < n_vocab; ++i) cand_[i] = { logits[i], i };
            std::partial_sort(cand_.begin(), cand_.begin() + k, cand_.end(),
                [](const std::pair<float, uint32_t> & a, const std::pair<float, uint32_t> & b) {
                    return a.first > b.first || (a.first == b.first && a.second < b.second);
                });
            for (uint32_t i = 0; i < k; ++i) lp->top.emplace_back(cand_[i].second, cand_[i].first - log_z);
        }
    }
    accept(chosen);
    return chosen;
}

} // namespace gpt2
