// Builds the GPT-2 forward graph for one batch. A pure function of (model, cache, batch): it
// creates tensors in the given (no_alloc) context and returns the graph, nothing else.
//
// Inputs (named, marked as inputs, filled by the caller after allocation):
//   "tokens"  I32 [n_tokens]         token ids
//   "pos"     I32 [n_tokens]         positions
//   "out_ids" I32 [n_out]            rows whose logits are computed (absent when all rows are)
//   "kq_mask.S" F16 [n_kv, n_tokens_S]  causal mask of segment S (only segments of > 1 token)
//   "head_ids" I32 [n_head]          rows of the output rows that reach the LM head (absent when all do)
//   "dec_rows" I32 [3, n_dec]        with `cpu`, per one-token segment: its batch row,
//                                    its slot's first cell, n_past + 1 (absent without such segments)
// Output: "logits" F32 [n_vocab, n_head].
#pragma once

#include "gpt/batch.h"
#include "gpt/decode_attention.h"
#include "gpt/dense_matmul.h"

#include <cstddef>

struct ggml_context;
struct ggml_cgraph;
struct ggml_tensor;

namespace gpt2 {

struct model;
struct kv_cache;

// The state of the graph's own CPU ops, one per thread pool (its graphs run one at a time).
struct cpu_op_state {
    work_queue             matmul;      // dense_matmul's
    decode_attention_state attention;
    // A block matmul of one row goes through dense_matmul (same bits as ggml's kernel for
    // several rows, where the decoder's probe found so): no padding row for batch invariance.
    bool own_lone_rows = false;
    // Quantized block matmuls go through quant_matmul where it applies (decoding steps; every row
    // count for q4_K as stored). Turned off by the decoder if its probe finds that ours and
    // ggml's kernel for many rows disagree on this machine.
    bool own_quant_blocks = true;
};

// With `cpu` (the whole graph runs on the CPU backend) the graph takes our CPU ops and shapes:
// decode_attention() for one-token segments, lm_head() below. Without it, ggml's ops only.
ggml_cgraph * graph_build(ggml_context * ctx, const model & m, const kv_cache & kv, const batch & b, cpu_op_state * cpu);

// A block weight's product w·x ([n_out, n]): ggml's, or ours for one row (cpu->own_lone_rows).
ggml_tensor * block_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu);

// The LM head's product w·x ([n_vocab, n]), shaped for the CPU when given `cpu`.
ggml_tensor * lm_head(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu);

// Upper bound on the graph's node count, to size the graph and its metadata context.
size_t graph_max_nodes(const model & m, size_t n_segments);

} // namespace gpt2
