// GPT-2 hyperparameters, as read from GGUF metadata (llama.cpp's `gpt2.*` keys).
#pragma once

#include <cstdint>

namespace gpt2 {

struct hparams {
    uint32_t n_vocab  = 0;       // rows of token_embd (50257 for GPT-2)
    uint32_t n_ctx    = 0;       // learned positions (gpt2.context_length, 1024 for GPT-2)
    uint32_t n_embd   = 0;       // gpt2.embedding_length
    uint32_t n_head   = 0;       // gpt2.attention.head_count
    uint32_t n_layer  = 0;       // gpt2.block_count
    uint32_t n_ff     = 0;       // gpt2.feed_forward_length (4·n_embd)
    float    norm_eps = 1e-5f;   // gpt2.attention.layer_norm_epsilon

    uint32_t n_embd_head() const { return n_embd / n_head; }
};

}   // namespace gpt2
