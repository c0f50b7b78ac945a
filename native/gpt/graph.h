// Builds the GPT-2 forward graph for one batch. A pure function of (model, cache, batch): it
// creates tensors in the given (no_alloc) context and returns the graph, nothing else.
//
// Inputs (named, marked as inputs, filled by the caller after allocation):
//   "tokens"  I32 [n_tokens]         token ids
//   "pos"     I32 [n_tokens]         positions
//   "kv_cells" I64 [n_tokens]        the cache cell each row's key and value go to
//   "out_ids" I32 [n_out]            rows whose logits are computed (absent when all rows are)
//   "kq_mask.S" F16 [n_kv, n_tokens_S]  causal mask of segment S (only segments of > 1 token)
//   "head_ids" I32 [n_head]          rows of the output rows that reach the LM head (absent when all do)
//   "dec_rows" I32 [3, n_dec]        with `cpu`, per one-token segment: its batch row,
//                                    its slot's first cell, n_past + 1 (absent without such segments)
// Output: "logits" F32 [n_vocab, n_head].
#pragma once

#include "gpt/batch.h"

#include <cstddef>

struct ggml_context;
struct ggml_cgraph;

namespace gpt2 {

struct model;
struct kv_cache;
struct cpu_op_state;

// With `cpu` (the whole graph runs on the CPU backend) the graph takes the kernels that
// kernels/dispatch.h chooses, ours among them; without it, ggml's ops only.
ggml_cgraph * graph_build(ggml_context * ctx, const model & m, const kv_cache & kv, const batch & b, cpu_op_state * cpu);

// Upper bound on the graph's node count, to size the graph and its metadata context.
size_t graph_max_nodes(const model & m, size_t n_segments);

}   // namespace gpt2
