// A matmul of our own for f16 and f32 weights on the CPU (a custom ggml op), for two places:
//
// - The LM head. ggml's CPU matmul takes llamafile's tinyBLAS only when the output count is a
//   multiple of 4, and GPT-2's 50257 is not, so the head fell back to one dot product per logit.
//   Splitting off the last row let tinyBLAS take the rest, but a lone stream then ran slower, and
//   a row's logits depended on the kernel its row count picked (bench/RESULTS.md, fourth run).
// - The few rows of a block matmul that ggml multiplies with another kernel than tinyBLAS (a lone
//   row on x86; up to 3 or 7 on NEON: ggml_tinyblas_min_rows), which rounds otherwise than tinyBLAS
//   does for many (dispatch.h, block_matmul): see round_x below.
//
// Every output is computed the same way (FMA chains along the row in eight lanes, sixteen where
// ggml's CPU backend is built for AVX-512 and the CPU has it, four on NEON or eight half-precision
// ones, then a horizontal sum) whatever the number of rows, tiled for registers (4 weight rows x 3 columns) and for the
// cache (blocks of 64 weight rows, which stay in L2 while every column passes); the weights are
// read once per call.
#pragma once

#include "kernels/work_queue.h"

#include "ggml.h"

#include <cstdint>

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// The fewest rows (columns of x) for which ggml's CPU matmul multiplies weights of this type (F16,
// F32) by llamafile's tinyBLAS in this build; fewer take ggml's dot product, which rounds otherwise.
int64_t ggml_tinyblas_min_rows(ggml_type type);

// Whether ggml's tinyBLAS multiplies weights of this type by x rounded to f16 (dense_matmul's
// round_x, to give its numbers).
bool ggml_tinyblas_rounds_x(ggml_type type);

// Whether dense_matmul() takes w (F16 or F32, rows a multiple of 8 wide) times x (F32, contiguous).
bool dense_matmul_supports(const ggml_tensor * w, const ggml_tensor * x);

// w [K, M] (M rows of K), x F32 [K, n] contiguous: returns F32 [M, n], like ggml_mul_mat(w, x).
// round_x: x is rounded to f16 first, as ggml does before multiplying f16 weights. Each output is
// then the very sum llamafile's tinyBLAS computes (FMA chains in as many lanes as tinyBLAS was
// built for, the same horizontal sum; in half precision where tinyBLAS sums so) - which is what lets a lone row of a block matmul skip the padding row (kernels/dispatch.h,
// block_matmul; checked at load by the decoder's probe, not assumed).
ggml_tensor * dense_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue, bool round_x);

}   // namespace gpt2
