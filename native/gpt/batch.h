// A batch: the tokens of one forward pass, grouped in segments. A segment is a run of
// consecutive positions of one sequence (its slot in the KV cache): a prompt chunk being
// prefilled, or the one new token of a sequence being decoded. Parallel arrays, like llama.h.
#pragma once

#include <cstdint>
#include <vector>

namespace gpt2 {

struct batch_segment {
    uint32_t slot;       // KV cache region of the sequence
    uint32_t n_past;     // positions already in the cache; this segment starts at position n_past
    uint32_t n_tokens;   // tokens in this segment (≥ 1)
    uint32_t first;      // index of its first token in batch::tokens
};

struct batch {
    std::vector<int32_t>       tokens;   // token ids, segment after segment
    std::vector<int32_t>       pos;      // position of each token
    std::vector<batch_segment> segments;
    std::vector<int32_t>       out_rows;   // ascending indices into tokens whose logits are wanted
    // Set by the decoder only: ascending indices into out_rows that the LM head computes (the
    // others ran the last layer for batch invariance only). Empty: all out_rows.
    std::vector<int32_t> head_rows;

    void clear() {
        tokens.clear();
        pos.clear();
        segments.clear();
        out_rows.clear();
        head_rows.clear();
    }

    // Appends n tokens of one sequence; `want_logits` marks which of them produce logits
    // (none, the last, or all).
    enum class logits { none, last, all };
    void add_segment(uint32_t slot, uint32_t n_past, const uint32_t * ids, uint32_t n, logits want) {
        const uint32_t first = (uint32_t) tokens.size();
        segments.push_back({ slot, n_past, n, first });
        for (uint32_t i = 0; i < n; ++i) {
            tokens.push_back((int32_t) ids[i]);
            pos.push_back((int32_t) (n_past + i));
            if (want == logits::all || (want == logits::last && i + 1 == n)) out_rows.push_back((int32_t) (first + i));
        }
    }
};

}   // namespace gpt2
