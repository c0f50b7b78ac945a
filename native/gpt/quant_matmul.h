// Matmuls of our own for quantized weights on the CPU (a custom ggml op), with the same numbers
// as ggml's:
//
// - q8_0, and q4_0 as stored (GPT-2's tied LM head: ggml repacks q4_0 block weights, not the
//   token embedding). ggml multiplies them with llamafile's tinyBLAS (two rows and up) or one dot
//   product per output (one row). Both sum each output the same way, but tinyBLAS splits the work
//   into equal shares up front: in a 32-stream step its threads then waited for each other at
//   the barriers for 8 % of the time. And the LM head, 50257 rows, had to be split into a
//   multiple of 4 and a tail, then joined. Here the work is handed out first come first served
//   (work_queue.h).
// - q4_K, as stored (not repacked). Under batch invariance q4_K weights stay in their stored
//   layout (ggml's repacked kernels round one row otherwise than several), where ggml computes
//   one dot product per output: each weight block's six-bit scales and nibbles are unpacked
//   again for every row of the batch. Here a block is unpacked once for up to three rows
//   (prompts measured 1.6x faster).
//
// Each output is computed exactly as ggml's dot product computes it: per block, the integer dot
// products of the weights and the activations quantized by ggml (q8_0 or q8_K, by a ggml_cpy node
// before the op, with ggml's own quantizer), in the same eight int32 lanes, scaled and accumulated
// by the same float operations in block order, then the same horizontal sums. So every output is
// equal to the bit to ggml's whatever the number of rows: the decoder's load-time probe checks
// it, parity with llama.cpp stays exact, and a row's numbers do not depend on the batch.
//
// AVX2 only; elsewhere, or with GPT2_NODE_PORTABLE_KERNELS=1, the graph takes ggml's matmul.
#pragma once

#include "gpt/work_queue.h"

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// Whether quant_matmul() takes w (Q8_0, or Q4_0 / Q4_K in their stored layout, Q4_K rows of at
// most 16384; contiguous) times x (F32 [K, n], contiguous) here.
bool quant_matmul_supports(const ggml_tensor * w, const ggml_tensor * x);

// w [K, M], x F32 [K, n]: returns F32 [M, n], equal to the bit to ggml_mul_mat(w, x) on the CPU.
// Blocks of weight rows are handed out through `queue`.
ggml_tensor * quant_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue);

} // namespace gpt2
