#include "kernels/quant_matmul.h"

#include "kernels/q4k_interleaved.h"
#include "kernels/quant_blocks.h"
#include "kernels/simd_arm.h"
#include "kernels/simd_x86.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace gpt2 {

namespace {

constexpr int64_t k_block_rows = 64;   // weight rows per work item: 64 x 3072 q8_0 = 204 KiB

// The op's operands: weight blocks WB, activation blocks XB (nb blocks per row), the F32 result.
template <typename WB, typename XB> struct operands {
    const WB * w;   // row i at w + i·nb
    const XB * x;   // column j at x + j·nb
    float *    c;   // column j at c + j·M
    int64_t    nb, M, n;
};

#ifdef GPT2_NODE_X86
// The 32 signed weights of a block, as ggml's dot products see them: q8_0's bytes; q4_0's
// nibbles (the low ones are weights 0-15, the high ones 16-31) minus 8.
GPT2_AVX2 inline __m256i block_weights(const q8_block & b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b.qs)); }
GPT2_AVX2 inline __m256i block_weights(const q4_block & b) {
    const __m128i lo      = _mm_loadu_si128(reinterpret_cast<const __m128i *>(b.qs));
    const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(lo, 4), lo), _mm256_set1_epi8(0xF));
    return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
}

// The operands, and the activations' scales in f32, block-major: column j's scale of block b at
// xs[b·n + j] (four columns' in one load).
template <typename WB> struct q8x_operands : operands<WB, q8_block> {
    const float * xs;
};

// Weights of 32-blocks (q8_0, q4_0) times q8_0 activations. Per output and block: the integer
// dot product in eight int32 lanes (maddubs of |w| and a with w's signs, then pairs summed; or
// VNNI's dpbusd, the same sums, in the tile for many columns below),
// converted to float and accumulated with the scales' product d_w · d_x by FMA, in block order;
// then the horizontal sum. ggml's order and ggml's product.
//
// C[i .. i+RM) x [j .. j+RN), the scales' products computed as they are needed: the edges of
// the output (its last columns, an odd last row) and one column (a lone stream).
template <int RM, int RN, typename WB> GPT2_AVX2 void q8x_tile(const q8x_operands<WB> & o, int64_t i, int64_t j) {
    __m256 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_setzero_ps();
    const __m256i    ones = _mm256_set1_epi16(1);
    const WB *       w    = o.w + i * o.nb;
    const q8_block * x    = o.x + j * o.nb;
    for (int64_t b = 0; b < o.nb; ++b) {
        __m256i wq[RM], wabs[RM];
        __m256  wd[RM];
        for (int r = 0; r < RM; ++r) {
            const WB & blk = w[r * o.nb + b];
            wq[r]          = block_weights(blk);
            wabs[r]        = _mm256_sign_epi8(wq[r], wq[r]);
            wd[r]          = _mm256_cvtph_ps(_mm_set1_epi16((short) blk.d));   // broadcast, then convert: two instructions
        }
        if (RN == 1) {   // one column: memory-bound; fetch the next rows' blocks
            for (int r = 0; r < RM; ++r) _mm_prefetch(reinterpret_cast<const char *>(&w[(r + RM) * o.nb + b]), _MM_HINT_T0);
        }
        for (int c = 0; c < RN; ++c) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x[c * o.nb + b].qs));
            const __m256  xd = _mm256_broadcast_ss(o.xs + b * o.n + j + c);
            for (int r = 0; r < RM; ++r) {
                const __m256i dot = _mm256_madd_epi16(ones, _mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(xq, wq[r])));
                acc[r][c]         = _mm256_fmadd_ps(_mm256_mul_ps(wd[r], xd), _mm256_cvtepi32_ps(dot), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) o.c[(j + c) * o.M + i + r] = simd::hsum(acc[r][c]);
}

// The 2 x 4 tile, once per int8 dot product: AVX2's two instructions, AVX-VNNI's and AVX-512
// VNNI's one (q8x_tile_2x4.inc).
#define Q8X_TARGET      GPT2_AVX2
#define Q8X_DOT(wa, sx) _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(wa, sx))
namespace madd_dot {
#include "kernels/q8x_tile_2x4.inc"
}
#undef Q8X_TARGET
#undef Q8X_DOT
#define Q8X_TARGET      __attribute__((target("avxvnni,avx2,fma,f16c")))
#define Q8X_DOT(wa, sx) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), wa, sx)
namespace avx_vnni_dot {
#include "kernels/q8x_tile_2x4.inc"
}
#undef Q8X_TARGET
#undef Q8X_DOT
#define Q8X_TARGET      GPT2_AVX512_VNNI
#define Q8X_DOT(wa, sx) _mm256_dpbusd_epi32(_mm256_setzero_si256(), wa, sx)
namespace avx512_vnni_dot {
#include "kernels/q8x_tile_2x4.inc"
}
#undef Q8X_TARGET
#undef Q8X_DOT

template <typename WB> using q8x_tile_2x4_fn = void (*)(const q8x_operands<WB> &, int64_t, int64_t, const float *);

// The copy for the int8 dot product our kernels take on this CPU (simd::int8_dot()).
template <typename WB> q8x_tile_2x4_fn<WB> q8x_tile_2x4_here() {
    switch (simd::int8_dot()) {
    case simd::int8_dot_isa::avx512_vnni: return avx512_vnni_dot::q8x_tile_2x4<WB>;
    case simd::int8_dot_isa::avx_vnni: return avx_vnni_dot::q8x_tile_2x4<WB>;
    default: return madd_dot::q8x_tile_2x4<WB>;
    }
}

// Rows i .. i+RM against columns j0 .. j1, four at a time (two weight rows by four columns
// measured best on Zen 3 among 1-4 x 1-8, for q8_0).
template <int RM, typename WB>
GPT2_AVX2 void q8x_row_group(const q8x_operands<WB> & o, int64_t i, int64_t j0, int64_t j1, const float * ws,
                             q8x_tile_2x4_fn<WB> tile_2x4) {
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        if constexpr (RM == 2) tile_2x4(o, i, j, ws);
        else q8x_tile<RM, 4>(o, i, j);
    }
    switch (j1 - j) {
    case 3: q8x_tile<RM, 3>(o, i, j); break;
    case 2: q8x_tile<RM, 2>(o, i, j); break;
    case 1: q8x_tile<RM, 1>(o, i, j); break;
    default: break;
    }
}

// Columns in blocks of 64, so that a block of columns (64 x 3072 q8_0 = 204 KiB) and the
// item's weight rows (as much) both stay in L2 while one passes over the other.
template <typename WB> GPT2_AVX2 void q8x_rows(const q8x_operands<WB> & o, int64_t i0, int64_t i1) {
    constexpr int64_t               k_cols = 64;
    thread_local std::vector<float> ws;   // a row pair's weight scales in f32, for q8x_tile_2x4
    ws.resize(static_cast<size_t>(2 * o.nb));
    const q8x_tile_2x4_fn<WB> tile_2x4 = q8x_tile_2x4_here<WB>();
    for (int64_t j0 = 0; j0 < o.n; j0 += k_cols) {
        const int64_t j1 = std::min(o.n, j0 + k_cols);
        int64_t       i  = i0;
        for (; i + 2 <= i1; i += 2) {
            if (j1 - j0 >= 4) {
                for (int64_t b = 0; b < 2 * o.nb; ++b) ws[b] = _cvtsh_ss(o.w[i * o.nb + b].d);
            }
            q8x_row_group<2>(o, i, j0, j1, ws.data(), tile_2x4);
        }
        for (; i < i1; ++i) q8x_row_group<1>(o, i, j0, j1, nullptr, tile_2x4);
    }
}

// q4_K (stored) times q8_K activations, weight row i against columns j .. j+RN. Per output, as
// ggml's dot product: per super-block, the integer sums in eight int32 lanes (nibbles times
// activations, pairs summed and weighted by the sub-blocks' scales), converted and accumulated
// with d = d_x · d_w by FMA; the mins' correction in four lanes, with dmin = -d_x · dmin_w; the
// eight lanes' horizontal sum plus the four lanes' sum at the end.
using q4k_operands = operands<q4k_block, q8k_block>;

// A super-block's 8 scales and 8 mins, unpacked from their 12 bytes to 16 int16 (scales, then
// mins), four bytes at a time: bytes 0-3 hold scales 0-3 in their low six bits, bytes 4-7 mins
// 0-3; bytes 8-11 hold scales 4-7 in their low nibbles and mins 4-7 in their high nibbles, whose
// top two bits are the top bits of bytes 0-3 (scales) and 4-7 (mins).
GPT2_AVX2 inline __m256i q4k_scales_and_mins(const uint8_t * p) {
    uint32_t a0, a1, a2;
    std::memcpy(&a0, p, 4);
    std::memcpy(&a1, p + 4, 4);
    std::memcpy(&a2, p + 8, 4);
    const uint32_t scales_lo = a0 & 0x3f3f3f3fu;
    const uint32_t mins_lo   = a1 & 0x3f3f3f3fu;
    const uint32_t scales_hi = (a2 & 0x0f0f0f0fu) | (((a0 >> 6) & 0x03030303u) << 4);
    const uint32_t mins_hi   = ((a2 >> 4) & 0x0f0f0f0fu) | (((a1 >> 6) & 0x03030303u) << 4);
    return _mm256_cvtepu8_epi16(_mm_set_epi32((int) mins_hi, (int) mins_lo, (int) scales_hi, (int) scales_lo));
}

template <int RN> GPT2_AVX2 void q4k_tile(const q4k_operands & o, int64_t i, int64_t j) {
    constexpr int64_t k_max_blocks = 64;    // K up to 16384
    __m128i           mins[k_max_blocks];   // kept from the first pass for the second
    __m256            acc[RN];
    for (int c = 0; c < RN; ++c) acc[c] = _mm256_setzero_ps();
    const __m256i     m4 = _mm256_set1_epi8(0xF);
    const q4k_block * w  = o.w + i * o.nb;
    const q8k_block * x  = o.x + j * o.nb;
    // First pass: the scaled nibble sums, d = d_x · d_w.
    for (int64_t b = 0; b < o.nb; ++b) {
        const q4k_block & wb    = w[b];
        const __m256i     sm    = q4k_scales_and_mins(wb.scales);
        const __m128i     sc128 = _mm256_castsi256_si128(sm);
        mins[b]                 = _mm256_extracti128_si256(sm, 1);
        const __m256i scales    = _mm256_set_m128i(sc128, sc128);
        const float   d_w       = _cvtsh_ss(wb.d);
        __m256i       sumi[RN];
        for (int c = 0; c < RN; ++c) sumi[c] = _mm256_setzero_si256();
        for (int g = 0; g < 4; ++g) {   // 64 weights: 32 low nibbles, 32 high
            const __m256i scale_l = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (((4 * g + 1) << 8) | (4 * g))));
            const __m256i scale_h = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short) (((4 * g + 3) << 8) | (4 * g + 2))));
            const __m256i bits    = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(wb.qs + 32 * g));
            const __m256i q4l     = _mm256_and_si256(bits, m4);
            const __m256i q4h     = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            for (int c = 0; c < RN; ++c) {
                const int8_t * q8 = x[c * o.nb + b].qs + 64 * g;
                const __m256i  pl = _mm256_madd_epi16(scale_l,
                                                      _mm256_maddubs_epi16(q4l, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q8))));
                const __m256i  ph = _mm256_madd_epi16(
                    scale_h, _mm256_maddubs_epi16(q4h, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(q8 + 32))));
                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(pl, ph));
            }
        }
        for (int c = 0; c < RN; ++c) {
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(x[c * o.nb + b].d * d_w), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        }
    }
    // Second pass: the mins' correction, its own accumulator in block order as in ggml (so the
    // split into two passes changes no rounding), dmin = -d_x · dmin_w.
    for (int c = 0; c < RN; ++c) {
        __m128 acc_m = _mm_setzero_ps();
        for (int64_t b = 0; b < o.nb; ++b) {
            const q8k_block & xb    = x[c * o.nb + b];
            const __m256i     bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xb.bsums));
            const __m128i     q8s   = _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));   // per sub-block
            acc_m = _mm_fmadd_ps(_mm_set1_ps(-xb.d * _cvtsh_ss(w[b].dmin)), _mm_cvtepi32_ps(_mm_madd_epi16(mins[b], q8s)), acc_m);
        }
        acc_m                  = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
        acc_m                  = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
        o.c[(j + c) * o.M + i] = simd::hsum(acc[c]) + _mm_cvtss_f32(acc_m);
    }
}

// Columns in blocks of 32 (32 x 3072 q8_K = 112 KiB), so that a block of columns and the item's
// weight rows (64 x 3072 q4_K = 108 KiB) both stay in L2 while one passes over the other.
GPT2_AVX2 void q4k_rows(const q4k_operands & o, int64_t i0, int64_t i1) {
    constexpr int64_t k_cols = 32;
    for (int64_t j0 = 0; j0 < o.n; j0 += k_cols) {
        const int64_t j1 = std::min(o.n, j0 + k_cols);
        for (int64_t i = i0; i < i1; ++i) {
            int64_t j = j0;
            for (; j + 3 <= j1; j += 3) q4k_tile<3>(o, i, j);
            switch (j1 - j) {
            case 2: q4k_tile<2>(o, i, j); break;
            case 1: q4k_tile<1>(o, i, j); break;
            default: break;
            }
        }
    }
}
#endif

template <typename WB, typename XB> operands<WB, XB> operands_of(const ggml_tensor * dst) {
    const ggml_tensor * w = dst->src[0];
    const ggml_tensor * x = dst->src[1];   // the activations, quantized by ggml (q8_0, or q8_K for q4_K)
    return { static_cast<const WB *>(w->data),
             static_cast<const XB *>(x->data),
             static_cast<float *>(dst->data),
             w->ne[0] / ggml_blck_size(w->type),
             w->ne[1],
             x->ne[1] };
}

#ifdef GPT2_NODE_ARM
// The 16 low and 16 high signed weights of a block, as ggml's NEON kernels see them: q8_0's bytes;
// q4_0's nibbles (low ones weights 0-15, high ones 16-31) minus 8.
inline int8x16_t weights_lo(const q8_block & b) { return vld1q_s8(b.qs); }
inline int8x16_t weights_hi(const q8_block & b) { return vld1q_s8(b.qs + 16); }
inline int8x16_t weights_lo(const q4_block & b) {
    return vsubq_s8(vreinterpretq_s8_u8(vandq_u8(vld1q_u8(b.qs), vdupq_n_u8(0x0F))), vdupq_n_s8(8));
}
inline int8x16_t weights_hi(const q4_block & b) { return vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(vld1q_u8(b.qs), 4)), vdupq_n_s8(8)); }
inline float     half(uint16_t h) { return static_cast<float>(*reinterpret_cast<const __fp16 *>(&h)); }

// Weights of 32-blocks (q8_0, q4_0) times q8_0 activations on NEON with the int8 dot product. Per
// output and block: the low and the high halves' dot products into four int32 lanes, converted to
// float and accumulated with the scales' product d_w · d_x (vmlaq_n_f32), in block order; then
// vaddvq_f32. That is llamafile's tinyBLAS_Q0_ARM, which ggml takes from two rows up; for one
// row ggml takes its dot product, which sums otherwise (one ulp apart, measured under emulation),
// so ours gives a lone row the numbers it gets among others. Rows four at a time, one column.
template <int RM, typename WB> GPT2_DOTPROD void q8x_tile_neon(const operands<WB, q8_block> & o, int64_t i, int64_t j) {
    float32x4_t acc[RM];
    for (int r = 0; r < RM; ++r) acc[r] = vdupq_n_f32(0.0f);
    const WB *       w = o.w + i * o.nb;
    const q8_block * x = o.x + j * o.nb;
    for (int64_t b = 0; b < o.nb; ++b) {
        const int8x16_t xl = vld1q_s8(x[b].qs), xh = vld1q_s8(x[b].qs + 16);
        const float     dx = half(x[b].d);
        for (int r = 0; r < RM; ++r) {
            const WB &      blk = w[r * o.nb + b];
            const int32x4_t dot = vdotq_s32(vdotq_s32(vdupq_n_s32(0), weights_lo(blk), xl), weights_hi(blk), xh);
            acc[r]              = vmlaq_n_f32(acc[r], vcvtq_f32_s32(dot), half(blk.d) * dx);
        }
    }
    for (int r = 0; r < RM; ++r) o.c[j * o.M + i + r] = vaddvq_f32(acc[r]);
}

template <typename WB> GPT2_DOTPROD void q8x_rows_neon(const operands<WB, q8_block> & o, int64_t i0, int64_t i1) {
    for (int64_t j = 0; j < o.n; ++j) {
        int64_t i = i0;
        for (; i + 4 <= i1; i += 4) q8x_tile_neon<4, WB>(o, i, j);
        for (; i < i1; ++i) q8x_tile_neon<1, WB>(o, i, j);
    }
}
#endif

// Blocks of k_block_rows weight rows, taken from the queue until none are left, each through `rows`.
template <typename O> void take_row_blocks(const O & o, work_queue & queue, void (*rows)(const O &, int64_t, int64_t)) {
    const int64_t n_items = (o.M + k_block_rows - 1) / k_block_rows;
    for (int64_t b = queue.take(); b < n_items; b = queue.take()) rows(o, b * k_block_rows, std::min(o.M, (b + 1) * k_block_rows));
}

#ifdef GPT2_NODE_X86
// q8_0 or q4_0 weights: the activations' scales converted once per thread (n·nb of them, a few
// thousand; the tiles read each many times).
template <typename WB> GPT2_AVX2 void take_q8x_row_blocks(ggml_tensor * dst, work_queue & queue) {
    q8x_operands<WB>                o{ operands_of<WB, q8_block>(dst), nullptr };
    thread_local std::vector<float> xs;
    xs.resize(static_cast<size_t>(o.nb * o.n));
    for (int64_t j = 0; j < o.n; ++j)
        for (int64_t b = 0; b < o.nb; ++b) xs[b * o.n + j] = _cvtsh_ss(o.x[j * o.nb + b].d);
    o.xs = xs.data();
    take_row_blocks(o, queue, q8x_rows<WB>);
}
#endif

// q4_K interleaved (q4k_interleaved.h: its layout is its own; k_block_rows is a multiple of 4).
struct q4k_interleaved_block;
template <bool SIMD> void interleaved_rows(const operands<q4k_interleaved_block, q8k_block> & o, int64_t i0, int64_t i1) {
    q4k_interleaved_rows(o.w, o.x, o.c, o.nb, o.M, o.n, i0, i1, SIMD);
}

void compute(ggml_tensor * dst, int /*ith*/, int nth, void * userdata) {
    auto & queue = *static_cast<work_queue *>(userdata);
#ifdef GPT2_NODE_X86
    if (q4k_is_interleaved(dst->src[0])) {
        take_row_blocks(operands_of<q4k_interleaved_block, q8k_block>(dst), queue, interleaved_rows<true>);
        queue.finish(nth);
        return;
    }
    switch (dst->src[0]->type) {
    case GGML_TYPE_Q8_0: take_q8x_row_blocks<q8_block>(dst, queue); break;
    case GGML_TYPE_Q4_0: take_q8x_row_blocks<q4_block>(dst, queue); break;
    default: take_row_blocks(operands_of<q4k_block, q8k_block>(dst), queue, q4k_rows); break;   // Q4_K
    }
#elif defined(GPT2_NODE_ARM)
    if (dst->src[0]->type == GGML_TYPE_Q8_0) take_row_blocks(operands_of<q8_block, q8_block>(dst), queue, q8x_rows_neon<q8_block>);
    else take_row_blocks(operands_of<q4_block, q8_block>(dst), queue, q8x_rows_neon<q4_block>);   // Q4_0
#else
    (void) dst;   // not reached: quant_matmul_supports() is false off x86 and arm64
#endif
    queue.finish(nth);
}

// Without our SIMD kernels (GPT2_NODE_KERNELS=portable after load): interleaved q4_K weights,
// which ggml cannot read, through the portable reference.
void compute_portable(ggml_tensor * dst, int /*ith*/, int nth, void * userdata) {
    auto & queue = *static_cast<work_queue *>(userdata);
    take_row_blocks(operands_of<q4k_interleaved_block, q8k_block>(dst), queue, interleaved_rows<false>);
    queue.finish(nth);
}

// dst = x quantized to dst's type, rows split among the threads; ggml's quantizer for that type.
void quantize_rows(ggml_tensor * dst, int ith, int nth, void * /*userdata*/) {
    const ggml_tensor *     x        = dst->src[0];
    const ggml_from_float_t quantize = ggml_get_type_traits_cpu(dst->type)->from_float;
    const int64_t           n = x->ne[1], r0 = n * ith / nth, r1 = n * (ith + 1) / nth;
    for (int64_t r = r0; r < r1; ++r) {
        quantize(reinterpret_cast<const float *>(static_cast<const char *>(x->data) + r * x->nb[1]),
                 static_cast<char *>(dst->data) + r * dst->nb[1], x->ne[0]);
    }
}

}   // namespace

bool quant_matmul_supports(const ggml_tensor * w, const ggml_tensor * x) {
    const bool x_ok = x->type == GGML_TYPE_F32 && x->ne[0] == w->ne[0] && ggml_is_contiguous(x) && x->ne[2] == 1 && x->ne[3] == 1;
    if (q4k_is_interleaved(w)) return x_ok;   // with or without SIMD: nothing else can read it
#ifdef GPT2_NODE_X86
    if (!simd::enabled() || w->extra != nullptr) return false;   // extra: repacked by ggml's CPU_REPACK buffer
    const bool q8 = w->type == GGML_TYPE_Q8_0 && ggml_blck_size(GGML_TYPE_Q8_0) == 32 && ggml_type_size(GGML_TYPE_Q8_0) == sizeof(q8_block);
    const bool q4 = w->type == GGML_TYPE_Q4_0 && ggml_blck_size(GGML_TYPE_Q4_0) == 32 &&
        ggml_type_size(GGML_TYPE_Q4_0) == sizeof(q4_block) && ggml_type_size(GGML_TYPE_Q8_0) == sizeof(q8_block);
    const bool q4k = w->type == GGML_TYPE_Q4_K && w->ne[0] <= 64 * 256 && ggml_blck_size(GGML_TYPE_Q4_K) == 256 &&
        ggml_type_size(GGML_TYPE_Q4_K) == sizeof(q4k_block) && ggml_blck_size(GGML_TYPE_Q8_K) == 256 &&
        ggml_type_size(GGML_TYPE_Q8_K) == sizeof(q8k_block);
    return (q8 || q4 || q4k) && w->ne[0] % ggml_blck_size(w->type) == 0 && ggml_is_contiguous(w) && x_ok;
#elif defined(GPT2_NODE_ARM)
    // q8_0 and q4_0 as stored, where ggml is built with the int8 dot product (its tinyBLAS_Q0_ARM)
    if (simd::path() != simd::isa::neon || !ggml_cpu_has_dotprod() || w->extra != nullptr) return false;
    const bool q8 = w->type == GGML_TYPE_Q8_0 && ggml_blck_size(GGML_TYPE_Q8_0) == 32 && ggml_type_size(GGML_TYPE_Q8_0) == sizeof(q8_block);
    const bool q4 = w->type == GGML_TYPE_Q4_0 && ggml_blck_size(GGML_TYPE_Q4_0) == 32 &&
        ggml_type_size(GGML_TYPE_Q4_0) == sizeof(q4_block) && ggml_type_size(GGML_TYPE_Q8_0) == sizeof(q8_block);
    return (q8 || q4) && w->ne[0] % 32 == 0 && ggml_is_contiguous(w) && x_ok;
#else
    (void) w;
    (void) x;
    return false;
#endif
}

ggml_tensor * quant_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue) {
    GGML_ASSERT(quant_matmul_supports(w, x));
    // The activations quantized by ggml's quantizer, as ggml_mul_mat quantizes them for these
    // weights. An op of its own, not a ggml_cpy into a new tensor: that tensor would be a leaf of
    // the graph, which the allocator never reuses (measured: 38 MiB more compute buffer for 124M
    // q4_K, every layer's quantized activations kept).
    const ggml_type xt     = w->type == GGML_TYPE_Q4_K ? GGML_TYPE_Q8_K : GGML_TYPE_Q8_0;
    ggml_tensor *   xq     = ggml_custom_4d(ctx, xt, x->ne[0], x->ne[1], 1, 1, &x, 1, quantize_rows, GGML_N_TASKS_MAX, nullptr);   // [K, n]
    ggml_tensor *   args[] = { w, xq };
    const ggml_custom_op_t op = q4k_is_interleaved(w) && !simd::enabled() ? compute_portable : compute;
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[1], x->ne[1], 1, 1, args, 2, op, GGML_N_TASKS_MAX, &queue);
}

}   // namespace gpt2
