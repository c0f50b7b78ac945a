#include "gpt/q8_matmul.h"

#include "gpt/simd_x86.h"

#include "ggml.h"

#include <algorithm>
#include <cstdint>

namespace gpt2 {

namespace {

// ggml's q8_0 block: an f16 scale and 32 signed bytes (checked against ggml's type size below).
struct q8_block {
    uint16_t d;
    int8_t   qs[32];
};
static_assert(sizeof(q8_block) == 34, "q8_0 blocks are 34 bytes");

constexpr int64_t k_block_rows = 64;   // weight rows per work item: 64 x 3072 q8_0 = 204 KiB

#ifdef GPT2_NODE_X86
struct operands {
    const q8_block * w;   // row i at w + i·nb
    const q8_block * x;   // column j at x + j·nb
    float *          c;   // column j at c + j·M
    int64_t          nb, M, n;
};

// C[i .. i+RM) x [j .. j+RN). Per output and block: the integer dot product in eight int32 lanes
// (maddubs of |w| and a with w's signs, then pairs summed), converted to float and accumulated
// with the scales' product by FMA, in block order; then the horizontal sum. ggml's order.
template <int RM, int RN>
GPT2_AVX2 void tile(const operands & o, int64_t i, int64_t j) {
    __m256 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const q8_block * w = o.w + i * o.nb;
    const q8_block * x = o.x + j * o.nb;
    for (int64_t b = 0; b < o.nb; ++b) {
        __m256i wq[RM], wabs[RM];
        __m256 wd[RM];
        for (int r = 0; r < RM; ++r) {
            const q8_block & blk = w[r * o.nb + b];
            wq[r]   = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk.qs));
            wabs[r] = _mm256_sign_epi8(wq[r], wq[r]);
            wd[r]   = _mm256_cvtph_ps(_mm_set1_epi16((short) blk.d));   // broadcast, then convert: two instructions
        }
        if (RN == 1) {   // one column: memory-bound; fetch the next rows' blocks
            for (int r = 0; r < RM; ++r) _mm_prefetch(reinterpret_cast<const char *>(&w[(r + RM) * o.nb + b]), _MM_HINT_T0);
        }
        for (int c = 0; c < RN; ++c) {
            const q8_block & blk = x[c * o.nb + b];
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(blk.qs));
            const __m256 xd = _mm256_cvtph_ps(_mm_set1_epi16((short) blk.d));
            for (int r = 0; r < RM; ++r) {
                const __m256i dot = _mm256_madd_epi16(ones, _mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(xq, wq[r])));
                acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(wd[r], xd), _mm256_cvtepi32_ps(dot), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) o.c[(j + c) * o.M + i + r] = simd::hsum(acc[r][c]);
}

// Rows i .. i+RM against every column, four at a time (two weight rows by four columns measured
// best on Zen 3 among 1-4 x 1-8).
template <int RM>
GPT2_AVX2 void row_group(const operands & o, int64_t i) {
    int64_t j = 0;
    for (; j + 4 <= o.n; j += 4) tile<RM, 4>(o, i, j);
    switch (o.n - j) {
        case 3: tile<RM, 3>(o, i, j); break;
        case 2: tile<RM, 2>(o, i, j); break;
        case 1: tile<RM, 1>(o, i, j); break;
        default: break;
    }
}

GPT2_AVX2 void rows(const operands & o, int64_t i0, int64_t i1) {
    int64_t i = i0;
    for (; i + 2 <= i1; i += 2) row_group<2>(o, i);
    for (; i < i1; ++i) row_group<1>(o, i);
}
#endif

void compute(ggml_tensor * dst, int /*ith*/, int nth, void * userdata) {
    auto & queue = *static_cast<work_queue *>(userdata);
#ifdef GPT2_NODE_X86
    const ggml_tensor * w = dst->src[0];
    const ggml_tensor * x = dst->src[1];   // the activations, quantized to q8_0
    operands o;
    o.w  = static_cast<const q8_block *>(w->data);
    o.x  = static_cast<const q8_block *>(x->data);
    o.c  = static_cast<float *>(dst->data);
    o.nb = w->ne[0] / 32;
    o.M  = w->ne[1];
    o.n  = x->ne[1];
    const int64_t n_items = (o.M + k_block_rows - 1) / k_block_rows;
    for (int64_t b = queue.take(); b < n_items; b = queue.take()) {
        rows(o, b * k_block_rows, std::min(o.M, (b + 1) * k_block_rows));
    }
#else
    (void) dst;   // not reached: q8_matmul_supports() is false off x86
#endif
    queue.finish(nth);
}

} // namespace

bool q8_matmul_supports(const ggml_tensor * w, const ggml_tensor * x) {
#ifdef GPT2_NODE_X86
    return simd::enabled() && w->type == GGML_TYPE_Q8_0 && ggml_blck_size(GGML_TYPE_Q8_0) == 32 &&
           ggml_type_size(GGML_TYPE_Q8_0) == sizeof(q8_block) && w->ne[0] % 32 == 0 && ggml_is_contiguous(w) &&
           x->type == GGML_TYPE_F32 && x->ne[0] == w->ne[0] && ggml_is_contiguous(x) && x->ne[2] == 1 && x->ne[3] == 1;
#else
    (void) w;
    (void) x;
    return false;
#endif
}

ggml_tensor * q8_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue) {
    GGML_ASSERT(q8_matmul_supports(w, x));
    // ggml's quantizer, as ggml_mul_mat quantizes its activations for q8_0 weights
    ggml_tensor * xq = ggml_cpy(ctx, x, ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, x->ne[0], x->ne[1]));   // [K, n] q8_0
    ggml_tensor * args[] = { w, xq };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[1], x->ne[1], 1, 1, args, 2, compute, GGML_N_TASKS_MAX, &queue);
}

} // namespace gpt2
