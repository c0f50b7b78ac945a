// Matmuls of our own for quantized weights on the CPU (a custom ggml op). On ggml's layouts they
// give ggml's numbers:
//
// - q8_0, and q4_0 as stored (GPT-2's tied LM head: ggml repacks q4_0 block weights, not the
//   token embedding). ggml multiplies them with llamafile's tinyBLAS (two rows and up) or one dot
//   product per output (one row). Both sum each output the same way, but tinyBLAS splits the work
//   into equal shares up front, so in a many-stream step its threads wait for each other at the
//   barriers. And the LM head, 50257 rows, had to be split into a multiple of 4 and a tail, then
//   joined. Here the work is handed out first come first served (work_queue.h), and the
//   two-rows-by-four-columns tile reads its scales' products from a table instead of computing
//   them per output; prompts take it too. Measured: bench/RESULTS.md, fifth and ninth runs.
// - q4_K as stored (with GPT2_NODE_NO_REPACK=1; else the decoder interleaves q4_K, below). ggml
//   computes one dot product per output there: each weight block's six-bit scales and nibbles
//   are unpacked again for every row of the batch. Here a block is unpacked once for up to three
//   rows (bench/RESULTS.md, fifth run).
//
// Each of those outputs is computed exactly as ggml's dot product computes it: per block, the
// integer dot products of the weights and the activations quantized by ggml's own quantizer (q8_0
// or q8_K, by an op before this one), in the same eight int32 lanes, scaled and accumulated by
// the same float operations in block order, then the same horizontal sums. So every output is
// equal to the bit to ggml's whatever the number of rows: the decoder's load-time probe checks
// it, parity with llama.cpp stays exact, and a row's numbers do not depend on the batch.
//
// - q4_K interleaved four rows at a time (q4k_interleaved.h): a layout of ours, with numbers of
//   its own (the same for every row count, by construction).
//
// AVX2, but for interleaved q4_K (which only it can read: a portable reference takes it with
// GPT2_NODE_KERNELS=portable). On arm64 with the int8 dot product, q8_0 and q4_0 as stored:
// the sums of ggml's tinyBLAS_Q0_ARM (which ggml takes from two rows up) for every row count, so
// that a lone row needs no padding row; ggml's own kernel takes the rest (kernels/dispatch.cpp).
// Elsewhere the graph takes ggml's matmul.
#pragma once

#include "kernels/work_queue.h"

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// Whether quant_matmul() takes w (Q8_0, or Q4_0 / Q4_K in their stored layout, Q4_K rows of at
// most 16384; contiguous; or Q4_K interleaved) times x (F32 [K, n], contiguous) here.
bool quant_matmul_supports(const ggml_tensor * w, const ggml_tensor * x);

// w [K, M], x F32 [K, n]: returns F32 [M, n], equal to the bit to ggml_mul_mat(w, x) on the CPU
// (but for interleaved w). Blocks of weight rows are handed out through `queue`.
ggml_tensor * quant_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue);

}   // namespace gpt2
