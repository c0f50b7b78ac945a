#include "kernels/q4k_interleaved.h"

#include "kernels/quant_blocks.h"
#include "kernels/simd_x86.h"

#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace gpt2 {

namespace {

// Four rows' super-block (see the header). qs[g][v] holds, for each row r at bytes 8r .. 8r+7,
// that row's stored bytes 32g + 8v .. 32g + 8v + 7: low nibbles are weights 8v .. 8v+7 of
// sub-block 2g, high nibbles the same weights of sub-block 2g + 1.
struct q4k_x4_block {
    uint16_t d[4];           // per row: f16 scale of the sub-block scales
    uint16_t dmin[4];        // per row: f16 scale of the sub-block mins
    uint8_t  scales[8][4];   // [sub-block][row], six bits
    uint8_t  mins[4][8];     // [row][sub-block], six bits
    uint8_t  qs[4][4][32];   // [pair of sub-blocks][8-weight chunk][row · 8 + byte]
};
static_assert(sizeof(q4k_x4_block) == 592, "interleaved q4_K blocks are 592 bytes");

constexpr int k_rows = 4;

// The tag in `extra` of interleaved tensors (only its address matters).
const char k_interleaved_tag = 0;

// A stored super-block's 8 scales and 8 mins from their 12 bytes: bytes 0-3 hold scales 0-3 in
// their low six bits, bytes 4-7 mins 0-3; bytes 8-11 hold scales 4-7 in their low nibbles and
// mins 4-7 in their high nibbles, whose top two bits are the top bits of bytes 0-3 and 4-7.
void unpack_scales_and_mins(const uint8_t * p, uint8_t * scales, uint8_t * mins) {
    for (int j = 0; j < 4; ++j) {
        scales[j]     = p[j] & 63;
        mins[j]       = p[j + 4] & 63;
        scales[j + 4] = (p[j + 8] & 0xF) | ((p[j] >> 6) << 4);
        mins[j + 4]   = (p[j + 8] >> 4) | ((p[j + 4] >> 6) << 4);
    }
}

// Portable reference, and the definition of the arithmetic. Per row r, column and super-block:
// two int32 sums (lanes h = 0, 1: weights 8v + 4h .. 8v + 4h + 3 of every chunk v of every
// sub-block, times that sub-block's scale); each accumulated in f32 over super-blocks by
// fma(x.d · d_r, sum, acc); the mins' int32 sum likewise by fma((-x.d) · dmin_r, sum, acc_m);
// the output is (acc_0 + acc_1) + acc_m.
void rows_portable(const q4k_x4_block * w, const q8k_block * x, float * c, int64_t nb, int64_t M, int64_t n, int64_t g0, int64_t g1) {
    for (int64_t gi = g0; gi < g1; ++gi) {
        for (int64_t j = 0; j < n; ++j) {
            float acc[k_rows][2] = {}, acc_m[k_rows] = {};
            for (int64_t b = 0; b < nb; ++b) {
                const q4k_x4_block & p  = w[gi * nb + b];
                const q8k_block &    xb = x[j * nb + b];
                for (int r = 0; r < k_rows; ++r) {
                    int32_t sum[2] = { 0, 0 };
                    for (int s = 0; s < 8; ++s) {
                        for (int h = 0; h < 2; ++h) {
                            int32_t t = 0;
                            for (int v = 0; v < 4; ++v) {
                                for (int e = 0; e < 4; ++e) {
                                    const uint8_t byte = p.qs[s / 2][v][8 * r + 4 * h + e];
                                    t += ((s & 1) ? byte >> 4 : byte & 0xF) * xb.qs[32 * s + 8 * v + 4 * h + e];
                                }
                            }
                            sum[h] += p.scales[s][r] * t;
                        }
                    }
                    int32_t sum_m = 0;
                    for (int s = 0; s < 8; ++s) sum_m += p.mins[r][s] * (xb.bsums[2 * s] + xb.bsums[2 * s + 1]);
                    const float d = xb.d * ggml_fp16_to_fp32(p.d[r]);
                    for (int h = 0; h < 2; ++h) acc[r][h] = std::fma(d, (float) sum[h], acc[r][h]);
                    acc_m[r] = std::fma(-xb.d * ggml_fp16_to_fp32(p.dmin[r]), (float) sum_m, acc_m[r]);
                }
            }
            for (int r = 0; r < k_rows && gi * k_rows + r < M; ++r) c[j * M + gi * k_rows + r] = (acc[r][0] + acc[r][1]) + acc_m[r];
        }
    }
}

#ifdef GPT2_NODE_X86
// A column's 8 activations at a, repeated for every row's lanes (a broadcast load).
GPT2_AVX2 inline __m256i broadcast8(const int8_t * a) {
    return _mm256_broadcastq_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(a)));
}

// Four rows gi·4 .. gi·4+3 by columns j .. j+RN, the reference's arithmetic: the int32 lanes of
// `sum` are (row 0, h 0), (row 0, h 1), (row 1, h 0) ...; acc likewise; acc_m one lane per row.
template <int RN>
GPT2_AVX2 void tile(const q4k_x4_block * w, const q8k_block * x, float * c, int64_t nb, int64_t M, int64_t gi, int64_t j) {
    __m256 acc[RN];
    __m128 acc_m[RN];
    for (int k = 0; k < RN; ++k) {
        acc[k]   = _mm256_setzero_ps();
        acc_m[k] = _mm_setzero_ps();
    }
    const __m256i m4          = _mm256_set1_epi8(0xF);
    const __m128i scale_lanes = _mm_set_epi8(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);   // row r's byte to int16 lanes 4r .. 4r+3
    const __m256i row_pairs   = _mm256_set_epi32(3, 3, 2, 2, 1, 1, 0, 0);
    const q4k_x4_block * wg   = w + gi * nb;
    const q8k_block *    xc   = x + j * nb;
    for (int64_t b = 0; b < nb; ++b) {
        const q4k_x4_block & p = wg[b];
        __m256i              sum[RN];
        for (int k = 0; k < RN; ++k) sum[k] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) {
            __m256i q[4];   // chunk v's nibbles of the four rows
            for (int v = 0; v < 4; ++v) {
                const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p.qs[s / 2][v]));
                q[v]               = (s & 1) ? _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4) : _mm256_and_si256(bits, m4);
            }
            uint32_t sc4;
            std::memcpy(&sc4, p.scales[s], 4);
            const __m256i scale = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi32_si128((int) sc4), scale_lanes));
#pragma GCC unroll 4
            for (int k = 0; k < RN; ++k) {   // unrolled, so that sum[k] stays in a register
                const int8_t * a   = xc[k * nb + b].qs + 32 * s;
                __m256i        p16 = _mm256_maddubs_epi16(q[0], broadcast8(a));
                p16                = _mm256_add_epi16(p16, _mm256_maddubs_epi16(q[1], broadcast8(a + 8)));
                p16                = _mm256_add_epi16(p16, _mm256_maddubs_epi16(q[2], broadcast8(a + 16)));
                p16                = _mm256_add_epi16(p16, _mm256_maddubs_epi16(q[3], broadcast8(a + 24)));
                sum[k]             = _mm256_add_epi32(sum[k], _mm256_madd_epi16(p16, scale));
            }
        }
        const __m256 d = _mm256_permutevar8x32_ps(
            _mm256_castps128_ps256(_mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p.d)))), row_pairs);
        const __m128  dmin   = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p.dmin)));
        const __m256i mins01 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p.mins[0])));   // rows 0, 1
        const __m256i mins23 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p.mins[2])));   // rows 2, 3
        for (int k = 0; k < RN; ++k) {
            const q8k_block & xb   = xc[k * nb + b];
            acc[k]                 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(xb.d), d), _mm256_cvtepi32_ps(sum[k]), acc[k]);
            const __m256i bsums    = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xb.bsums));
            const __m256i sub_sums = _mm256_broadcastsi128_si256(
                _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1)));
            const __m256i h     = _mm256_hadd_epi32(_mm256_madd_epi16(mins01, sub_sums),
                                                    _mm256_madd_epi16(mins23, sub_sums));                            // [0 0 2 2 | 1 1 3 3]
            const __m256i h2    = _mm256_hadd_epi32(h, h);                                                           // [0 2 0 2 | 1 3 1 3]
            const __m128i sum_m = _mm_unpacklo_epi32(_mm256_castsi256_si128(h2), _mm256_extracti128_si256(h2, 1));   // [0 1 2 3]
            acc_m[k]            = _mm_fmadd_ps(_mm_mul_ps(_mm_set1_ps(-xb.d), dmin), _mm_cvtepi32_ps(sum_m), acc_m[k]);
        }
    }
    const int64_t n_rows = std::min<int64_t>(k_rows, M - gi * k_rows);   // the last group of M = 50257 (the LM head) has 1
    for (int k = 0; k < RN; ++k) {
        const __m128 pairs = _mm_hadd_ps(_mm256_castps256_ps128(acc[k]), _mm256_extractf128_ps(acc[k], 1));   // acc_0 + acc_1 per row
        const __m128 out   = _mm_add_ps(pairs, acc_m[k]);
        if (n_rows == k_rows) {
            _mm_storeu_ps(c + (j + k) * M + gi * k_rows, out);
        } else {
            alignas(16) float rows[k_rows];
            _mm_store_ps(rows, out);
            std::memcpy(c + (j + k) * M + gi * k_rows, rows, n_rows * sizeof(float));
        }
    }
}

// Columns in blocks of 32 (32 x 3072 q8_K = 112 KiB, in L2 with the item's rows), four at a time.
GPT2_AVX2 void rows_avx2(const q4k_x4_block * w, const q8k_block * x, float * c, int64_t nb, int64_t M, int64_t n, int64_t g0, int64_t g1) {
    constexpr int64_t k_cols = 32;
    for (int64_t j0 = 0; j0 < n; j0 += k_cols) {
        const int64_t j1 = std::min(n, j0 + k_cols);
        for (int64_t gi = g0; gi < g1; ++gi) {
            int64_t j = j0;
            for (; j + 4 <= j1; j += 4) tile<4>(w, x, c, nb, M, gi, j);
            switch (j1 - j) {
            case 3: tile<3>(w, x, c, nb, M, gi, j); break;
            case 2: tile<2>(w, x, c, nb, M, gi, j); break;
            case 1: tile<1>(w, x, c, nb, M, gi, j); break;
            default: break;
            }
        }
    }
}
#endif

}   // namespace

bool q4k_interleave_supports(const ggml_tensor * w) {
#ifdef GPT2_NODE_X86
    return simd::enabled() && w->type == GGML_TYPE_Q4_K && w->extra == nullptr && ggml_is_contiguous(w) && w->ne[2] == 1 && w->ne[3] == 1 &&
        w->ne[0] % 256 == 0 && ggml_blck_size(GGML_TYPE_Q4_K) == 256 && ggml_type_size(GGML_TYPE_Q4_K) == sizeof(q4k_block) &&
        ggml_type_size(GGML_TYPE_Q8_K) == sizeof(q8k_block);
#else
    (void) w;
    return false;
#endif
}

size_t q4k_interleaved_size(const ggml_tensor * w) {
    return (size_t) ((w->ne[1] + k_rows - 1) / k_rows) * (size_t) (w->ne[0] / 256) * sizeof(q4k_x4_block);
}

void q4k_interleave(const ggml_tensor * w, void * dst) {
    const int64_t nb = w->ne[0] / 256, M = w->ne[1];
    const auto *  src = static_cast<const q4k_block *>(w->data);
    auto *        out = static_cast<q4k_x4_block *>(dst);
    for (int64_t gi = 0; gi < (M + k_rows - 1) / k_rows; ++gi) {
        for (int64_t b = 0; b < nb; ++b) {
            q4k_x4_block & p = out[gi * nb + b];
            std::memset(&p, 0, sizeof(p));   // rows past M (a last group of fewer than 4) stay zero
            for (int r = 0; r < k_rows && gi * k_rows + r < M; ++r) {
                const q4k_block & s = src[(gi * k_rows + r) * nb + b];
                p.d[r]              = s.d;
                p.dmin[r]           = s.dmin;
                uint8_t scales[8], mins[8];
                unpack_scales_and_mins(s.scales, scales, mins);
                for (int k = 0; k < 8; ++k) {
                    p.scales[k][r] = scales[k];
                    p.mins[r][k]   = mins[k];
                }
                for (int g = 0; g < 4; ++g) {
                    for (int v = 0; v < 4; ++v) std::memcpy(&p.qs[g][v][8 * r], s.qs + 32 * g + 8 * v, 8);
                }
            }
        }
    }
}

namespace {

// Row r's stored super-block b, rebuilt from the interleaved group: the inverse of q4k_interleave.
void stored_block(const q4k_x4_block & p, int r, q4k_block & s) {
    s.d    = p.d[r];
    s.dmin = p.dmin[r];
    for (int j = 0; j < 4; ++j) {
        const uint8_t sc_lo = p.scales[j][r], sc_hi = p.scales[j + 4][r], m_lo = p.mins[r][j], m_hi = p.mins[r][j + 4];
        s.scales[j]     = (uint8_t) (sc_lo | ((sc_hi >> 4) << 6));
        s.scales[j + 4] = (uint8_t) (m_lo | ((m_hi >> 4) << 6));
        s.scales[j + 8] = (uint8_t) ((sc_hi & 0xF) | ((m_hi & 0xF) << 4));
    }
    for (int g = 0; g < 4; ++g) {
        for (int v = 0; v < 4; ++v) std::memcpy(s.qs + 32 * g + 8 * v, &p.qs[g][v][8 * r], 8);
    }
}

// dst F32 [K, n] = rows ids of src[0], the ids split among the threads.
void get_rows(ggml_tensor * dst, int ith, int nth, void * /*userdata*/) {
    const ggml_tensor *   w   = dst->src[0];
    const ggml_tensor *   ids = dst->src[1];
    const int64_t         nb = w->ne[0] / 256, n = ids->ne[0], j0 = n * ith / nth, j1 = n * (ith + 1) / nth;
    const ggml_to_float_t to_float = ggml_get_type_traits(GGML_TYPE_Q4_K)->to_float;
    const auto *          groups   = static_cast<const q4k_x4_block *>(w->data);
    for (int64_t j = j0; j < j1; ++j) {
        const int64_t row = static_cast<const int32_t *>(ids->data)[j];
        float *       out = reinterpret_cast<float *>(static_cast<char *>(dst->data) + j * dst->nb[1]);
        for (int64_t b = 0; b < nb; ++b) {
            q4k_block s;
            stored_block(groups[(row / k_rows) * nb + b], (int) (row % k_rows), s);
            to_float(&s, out + b * 256, 256);
        }
    }
}

}   // namespace

ggml_tensor * q4k_interleaved_get_rows(ggml_context * ctx, ggml_tensor * w, ggml_tensor * ids) {
    GGML_ASSERT(q4k_is_interleaved(w) && ids->type == GGML_TYPE_I32 && ggml_is_contiguous(ids));
    ggml_tensor * args[] = { w, ids };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[0], ids->ne[0], 1, 1, args, 2, get_rows, GGML_N_TASKS_MAX, nullptr);
}

void q4k_mark_interleaved(ggml_tensor * t) { t->extra = const_cast<char *>(&k_interleaved_tag); }

bool q4k_is_interleaved(const ggml_tensor * t) { return t->extra == &k_interleaved_tag; }

void q4k_interleaved_rows(const void * w, const void * x, float * c, int64_t nb, int64_t M, int64_t n, int64_t i0, int64_t i1, bool simd) {
    const auto * wb = static_cast<const q4k_x4_block *>(w);
    const auto * xb = static_cast<const q8k_block *>(x);
#ifdef GPT2_NODE_X86
    if (simd) return rows_avx2(wb, xb, c, nb, M, n, i0 / k_rows, (i1 + k_rows - 1) / k_rows);
#else
    (void) simd;
#endif
    rows_portable(wb, xb, c, nb, M, n, i0 / k_rows, (i1 + k_rows - 1) / k_rows);
}

}   // namespace gpt2
