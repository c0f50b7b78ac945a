// q4_K weights interleaved four rows at a time (our own layout, made at load), and their product
// with q8_K activations on the CPU.
//
// Why: in ggml's stored q4_K layout a 32-byte vector of nibbles holds one row's sub-block, so each
// sub-block costs two multiplies per row and column (maddubs for the products, madd to weight
// them by the sub-block's scale): the integer sum cannot be widened before the scale. Here a
// vector holds 8 weights of each of four rows, so the four vectors of a sub-block add up in int16
// (at most 4 x 2 x 15 x 128 = 15360 per lane) before one madd weights all four rows: 1.25
// multiplies per row, sub-block and column instead of 2. This is the idea of ggml's repacked q4_K
// gemm, whose gemv (one row) rounds differently from its gemm: here one kernel takes every column
// count, so a sequence's numbers do not depend on the batch, by construction (the load-time probe
// checks it too). Measured against our kernel on the stored layout: bench/RESULTS.md, sixth run.
//
// The numbers are not ggml's to the bit (its dot product sums other lanes in another order): per
// output the same integer sums, then f32 products and sums in a fixed order of ours (see the
// portable reference in the .cpp). The AVX2 kernel and that reference agree to the bit.
//
// Per group of four rows and super-block of 256 weights, 592 bytes (4 x 144 = 576 stored): the
// rows' f16 scales and mins' scales, their 6-bit scales and mins unpacked to bytes, and the
// nibbles, 8 bytes of each row in turn.
#pragma once

#include <cstddef>
#include <cstdint>

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// Whether w (Q4_K, as stored) can be interleaved here: AVX2, our SIMD kernels enabled. A last
// group of fewer than 4 rows (GPT-2's LM head: 50257) is padded with zero rows.
bool q4k_interleave_supports(const ggml_tensor * w);

// The bytes w takes interleaved.
size_t q4k_interleaved_size(const ggml_tensor * w);

// Writes w's weights (as stored, in w->data) to dst, interleaved.
void q4k_interleave(const ggml_tensor * w, void * dst);

// A Q4_K tensor whose data is interleaved is marked (in its `extra`, as ggml marks its own
// repacked tensors): only quant_matmul() may read it.
void q4k_mark_interleaved(ggml_tensor * t);
bool q4k_is_interleaved(const ggml_tensor * t);

// Rows [i0, i1) (i0 a multiple of 4; i1 too, or M) of w·x into c: w interleaved (K = nb·256 by M), x nb q8_K blocks
// per column for n columns, c column-major [M, n]. simd: the AVX2 kernel, else the portable
// reference (the same bits).
void q4k_interleaved_rows(const void * w, const void * x, float * c, int64_t nb, int64_t M, int64_t n, int64_t i0, int64_t i1, bool simd);

// The rows `ids` (I32 [n]) of w (interleaved [K, M]) as F32 [K, n]: ggml_get_rows(w, ids) of the
// stored weights, to the bit (each row's stored blocks are rebuilt and dequantized by ggml). For a
// tied LM head, so that the token embedding's original pages are not read back (dispatch.h, token_rows).
ggml_tensor * q4k_interleaved_get_rows(ggml_context * ctx, ggml_tensor * w, ggml_tensor * ids);

}   // namespace gpt2
