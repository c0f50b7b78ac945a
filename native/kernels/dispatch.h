// Which kernel computes each of the graph's CPU-heavy ops: ggml's, or one of ours (this folder).
// The graph builder (gpt/graph.cpp) asks here and nowhere else; the decoder's load-time probes
// (runtime/invariance_probe.cpp) set the switches in cpu_op_state.
//
// Every function takes `cpu`: non-null when the whole graph runs on the CPU backend (our ops are
// custom CPU ops), null on the scheduler path (a GPU), where ggml's ops are taken throughout.
#pragma once

#include "kernels/decode_attention.h"
#include "kernels/work_queue.h"

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// The state of the graph's own CPU ops, one per thread pool (its graphs run one at a time).
struct cpu_op_state {
    work_queue             matmul;   // dense_matmul's and quant_matmul's
    decode_attention_state attention;
    // A block matmul of fewer rows than ggml's tinyBLAS takes (one on x86, up to 3 or 7 on NEON)
    // goes through dense_matmul (same bits as tinyBLAS for many rows, where the decoder's probe
    // found so): no padding row for batch invariance.
    bool own_few_rows = false;
    // Quantized block matmuls go through quant_matmul where it applies (decoding steps; every row
    // count for q4_K as stored). Turned off by the decoder if its probe finds that ours and
    // ggml's kernel for many rows disagree on this machine.
    bool own_quant_blocks = true;
    // The kernel path and int8 dot product last reported by note_kernel_path(): -1 none yet, else
    // a simd::isa, a simd::int8_dot_isa.
    int reported_path = -1;
    int reported_int8 = -1;
};

// Called by the graph builder once per graph: writes a debug log line when the path our kernels
// take (their AVX-512 or AVX2 code, or the portable one: no AVX2, or GPT2_NODE_KERNELS=portable,
// which also gives ggml's ops back) differs from the one last reported for this state, so a test
// can see which path a computation took; likewise for the int8 dot product of our quantized
// kernels on x86 ("CPU int8 dot products: ...").
void note_kernel_path(cpu_op_state * cpu);

// A block weight's product w·x ([n_out, n]): ggml's, or ours (above).
ggml_tensor * block_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu);

// The LM head's product w·x ([n_vocab, n]).
ggml_tensor * lm_head(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu);

// GPT-2's GELU (tanh form) of x [n_ff, n], in place where ours takes it: the same bits either way.
ggml_tensor * gelu(ggml_context * ctx, ggml_tensor * x, cpu_op_state * cpu);

// The token embedding's rows `ids` ([n_embd, n]). `tied_head` is the LM head when it is tied to
// the embedding: interleaved by the decoder, it holds the embedding too and the lookup reads it
// there, so that the original's pages, released, are not read back (to look up a few rows, the
// system's fault-around maps in their neighbours).
ggml_tensor * token_rows(ggml_context * ctx, ggml_tensor * embd, ggml_tensor * tied_head, ggml_tensor * ids);

// Whether decoding rows (one-token segments) take decode_attention() rather than ggml's flash
// attention.
inline bool own_decode_attention(const cpu_op_state * cpu) { return cpu != nullptr; }

}   // namespace gpt2
