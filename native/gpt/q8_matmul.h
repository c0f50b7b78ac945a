// A matmul of our own for q8_0 weights on the CPU (a custom ggml op), with the same numbers as
// ggml's and its work handed out first come first served.
//
// Why: ggml multiplies q8_0 weights with llamafile's tinyBLAS (two rows and up) or one dot product
// per output (one row). Both quantize the activations to q8_0 and sum each output the same way,
// but tinyBLAS splits the work into equal shares up front: in a 32-stream step its threads then
// waited for each other at the barriers for 8-9 % of the time. And the LM head, 50257 rows, had
// to be split into a multiple of 4 and a tail, then joined.
//
// Each output here is computed exactly as ggml computes it: per block of 32, the integer dot
// product of the q8_0 weights and q8_0 activations (maddubs on |w| and sign-adjusted a), times the
// product of the two scales, accumulated in eight lanes in block order, then the same horizontal
// sum. So every output is equal to the bit to ggml's, whatever the number of rows (the decoder's
// load-time probe checks it, and parity with llama.cpp stays exact). The activations are quantized
// by a ggml_cpy to q8_0 before the op: ggml's own quantizer, as in its matmul.
//
// AVX2 only; elsewhere, or with GPT2_NODE_PORTABLE_KERNELS=1, the graph takes ggml's matmul.
#pragma once

#include "gpt/work_queue.h"

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// Whether q8_matmul() takes w (Q8_0, contiguous) times x (F32 [K, n], contiguous) here.
bool q8_matmul_supports(const ggml_tensor * w, const ggml_tensor * x);

// w Q8_0 [K, M], x F32 [K, n]: returns F32 [M, n], equal to the bit to ggml_mul_mat(w, x) on the
// CPU. Blocks of 64 weight rows are handed out through `queue`.
ggml_tensor * q8_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue);

} // namespace gpt2
