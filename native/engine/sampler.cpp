#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace gpt2 {

uint32_t sampler::argmax(const float * logits, uint32_t n_vocab) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n_vocab; ++i) if (logits[i] > logits[best]) best = i;
    return best;
}

uint32_t sampler::sample(const float * logits, uint32_t n_vocab) {
    if (p_.temperature <= 0.0f || p_.top_k == 1) return argmax(logits, n_vocab);

    cand_.resize(n_vocab);
    for (uint32_t i = 0; i < n_vocab; ++i) cand_[i] = { logits[i] / p_.temperature, i };
    // Candidates in descending logit order, ties by ascending id, so results are deterministic.
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

    // softmax over the kept candidates
    const float max_l = cand_[0].first;
    double sum = 0.0;
    std::vector<double> prob(n);
    for (size_t i = 0; i < n; ++i) { prob[i] = std::exp((double) (cand_[i].first - max_l)); sum += prob[i]; }
    for (size_t i = 0; i < n; ++i) prob[i] /= sum;

    if (p_.min_p > 0.0f) {
        const double floor_p = prob[0] * p_.min_p;
        size_t keep = 1;
        while (keep < n && prob[keep] >= floor_p) ++keep;
        n = keep;
    }
    if (p_.top_p < 1.0f) {
        double cum = 0.0;
        size_t keep = 0;
        while (keep < n) { cum += prob[keep++]; if (cum >= p_.top_p) break; }
        n = keep;
    }
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += prob[i];

    const double r = rng_.uniform() * total;
    double acc = 0.0;
    for (size_t i = 0; i < n; ++i) {
        acc += prob[i];
        if (r < acc) return cand_[i].second;
    }
    return cand_[n - 1].second;
}

} // namespace gpt2
