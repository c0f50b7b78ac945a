// Attention for decoding rows (segments of one token), as one custom CPU op for all of them.
//
// Why not ggml_flash_attn_ext per segment: a decoding row is one query against a short cache
// region, and ggml's CPU flash-attention kernel spends that on per-cell overhead (a function
// call and an f16 round trip of the query per 64-wide dot product, a rescale per cell), which
// dominated many-stream steps (bench/RESULTS.md, fourth run). This op computes every decoding row of every head in one
// node, with the query in f32, and two plain passes (scores, then softmax-weighted values).
//
// Each (row, head) is computed alone, in a fixed order, from its own cache region only: a
// sequence's numbers do not depend on the other rows of the batch nor on the thread count
// (batch invariance). Tasks are whole rows (all heads, so that each cell's keys and values are
// read in one sweep) or, with few rows, single heads; a head's arithmetic is the same in both.
// CPU only: the graph takes it when the whole graph runs on the CPU backend.
#pragma once

#include "kernels/work_queue.h"

#include <cstdint>

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// The op's state, one per thread pool (its graphs run one at a time), outliving the graphs. The
// tasks are handed out through `queue`: sequences differ in length, so equal shares would not be
// equal work.
struct decode_attention_state {
    work_queue queue;
    int        n_head = 0;   // set by decode_attention()
};

// qkv:  F32 [3·n_embd, T], the fused q|k|v projection of the batch's T rows
// k, v: the layer's cache, F16 or F32 [n_embd, cells] (row = cell; head h at n_embd_head·h)
// n_head: heads of n_embd / n_head values each
// rows: I32 [3, n_rows] input, one (batch row, first cell of its region, cells to attend) per
//       decoding row; the row's own new key and value must already be in the cache
// Returns F32 [n_embd, T] with the decoding rows' attention output; other rows are left for the
// caller to fill (ggml_set_2d_inplace). `state` must outlive the graph's computation.
ggml_tensor * decode_attention(ggml_context * ctx, ggml_tensor * qkv, ggml_tensor * k, ggml_tensor * v, ggml_tensor * rows, int n_head,
                               decode_attention_state & state);

}   // namespace gpt2
