// The LM head's matmul for f16 and f32 weights on the CPU, as a custom op of our own.
//
// Why: ggml's CPU matmul takes llamafile's tinyBLAS only when the output count is a multiple of 4,
// and GPT-2's 50257 is not, so the head falls back to one dot product per logit: 1.5x slower than
// tinyBLAS at 32 rows (measured). Splitting off the last row lets tinyBLAS take the rest, but then
// a lone stream's head (two rows, with batch-invariance padding) ran 15 % slower, and a row's
// logits depended on the kernel its row count picked. This op computes every logit the same way
// (eight-lane sums along the row, then a horizontal sum) whatever the number of rows, tiled for
// registers (4 weight rows x 3 columns) and for the cache (blocks of 64 weight rows, which stay
// in L2 while every column passes), and reads the weights once per step.
#pragma once

#include <atomic>
#include <cstdint>

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// Whether lm_head_matmul() takes w (F16 or F32, rows a multiple of 8 wide) times x (F32, contiguous).
bool lm_head_matmul_supports(const ggml_tensor * w, const ggml_tensor * x);

// The op's work counter: one per thread pool (graphs computed one at a time), outliving them.
struct lm_head_matmul_state {
    std::atomic<int64_t> next{ 0 };   // the next block of rows to take
    std::atomic<int>     done{ 0 };   // threads finished with this run
};

// w [K, M] (M rows of K), x F32 [K, n] contiguous: returns F32 [M, n], like ggml_mul_mat(w, x).
// round_x: x is rounded to f16 first, as ggml does before multiplying f16 weights. Each logit is
// then the very sum llamafile's tinyBLAS computes (eight-lane FMA chains along the row, the same
// horizontal sum) - which is what lets a lone row of a block matmul skip the padding row (graph.h,
// block_matmul; checked at load by the decoder's probe, not assumed).
ggml_tensor * lm_head_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, lm_head_matmul_state & state, bool round_x);

} // namespace gpt2
