// Picks the next token from a row of logits: greedy when temperature is 0, otherwise softmax
// sampling at the given temperature after top-k / top-p / min-p filtering, with a per-sequence
// seeded RNG (the same seed gives the same tokens, whatever else runs beside it).
#pragma once

#include "engine/rng.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace gpt2 {

struct sampler_params {
    float    temperature = 1.0f;   // 0: greedy
    uint32_t top_k       = 0;      // 0: off
    float    top_p       = 1.0f;   // 1: off
    float    min_p       = 0.0f;   // 0: off
    uint64_t seed        = 0;
};

class sampler {
public:
    explicit sampler(const sampler_params & p) : p_(p), rng_(p.seed) {}
    uint32_t sample(const float * logits, uint32_t n_vocab);

    static uint32_t argmax(const float * logits, uint32_t n_vocab);   // lowest id on ties

private:
    sampler_params                       p_;
    rng                                  rng_;
    std::vector<std::pair<float, uint32_t>> cand_;   // scratch: (logit, id)
};

} // namespace gpt2
