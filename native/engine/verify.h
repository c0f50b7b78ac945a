// The model's side of speculative decoding: a guessed token checked against the model's own row
// of logits for that position, computed in the same step as the guesses before it (one
// one-token segment per guess: each row's numbers are those a step of its own would give, since
// no kernel's result depends on the rows beside it, engine.h).
//  - greedy: the model's pick, which the guess either is or is not;
//  - sampling: speculative sampling (Leviathan et al. 2023; Chen et al. 2023): the guess stands
//    with probability min(1, p/q), else a token is drawn from max(0, p − q), normalized; the
//    token then has exactly the model's distribution p, whatever the guesser's q was.
#pragma once

#include "engine/predictor.h"
#include "engine/sampler.h"

#include <cstdint>

namespace gpt2 {

// The token the sequence gets at this position; `kept`: it is the guess. `row` is prepared in
// place (bias, penalties); q: the distribution the guess was drawn from (null: a guess made with
// certainty, as prompt lookup's). Records the token in the sampler's penalty window.
uint32_t verify_guess(sampler & smp, float * row, uint32_t n_vocab, uint32_t guess, const token_distribution * q, token_logprob * lp,
                      bool & kept);

// How many tokens to guess (0 to max_n) for the most tokens per unit of time, when each guess is
// kept with probability p (until the first one that is not) and costs `cost` of a one-token step
// (its verification row, plus the draft's forward pass when a draft model guesses).
uint32_t best_guess_count(double p, double cost, uint32_t max_n);

}   // namespace gpt2
