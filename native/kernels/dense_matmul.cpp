#include "kernels/dense_matmul.h"

#include "kernels/simd_arm.h"
#include "kernels/simd_x86.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace gpt2 {

namespace {

constexpr int64_t k_block_rows = 64;   // weight rows per cache block: 64 x 768 f16 = 96 KiB

struct operands {
    const char *  w;   // row i at w + i·w_stride
    size_t        w_stride;
    const float * x;   // column j at x + j·K
    float *       c;   // column j at c + j·M
    int64_t       K, M, n;
    bool          round_x;     // x rounded to f16 first, as ggml rounds activations for f16 weights
    bool          half_sums;   // f16 weights times rounded x summed in half precision (NEON with FP16, below)
};

// Portable: the same eight-lane order, in plain loops.
template <typename T> float dot_portable(const T * w, const float * x, int64_t K, bool round_x, std::vector<float> & row) {
    const float * wf;
    if constexpr (std::is_same_v<T, float>) {
        wf = w;
    } else {
        row.resize(K);
        ggml_cpu_fp16_to_fp32(w, row.data(), K);
        wf = row.data();
    }
    float acc[8] = {};
    for (int64_t k = 0; k < K; k += 8) {
        for (int l = 0; l < 8; ++l) acc[l] += wf[k + l] * (round_x ? ggml_fp16_to_fp32(ggml_fp32_to_fp16(x[k + l])) : x[k + l]);
    }
    float s = 0.0f;
    for (float a : acc) s += a;
    return s;
}

template <typename T> void rows_portable(const operands & o, int64_t i0, int64_t i1) {
    thread_local std::vector<float> row;
    for (int64_t i = i0; i < i1; ++i) {
        const T * w = reinterpret_cast<const T *>(o.w + i * o.w_stride);
        for (int64_t j = 0; j < o.n; ++j) o.c[j * o.M + i] = dot_portable(w, o.x + j * o.K, o.K, o.round_x, row);
    }
}

#ifdef GPT2_NODE_X86
using simd::hsum;
using simd::load8;

// C[i .. i+RM) x [j .. j+RN): RM·RN accumulators, each summing its products in eight lanes along K.
template <int RM, int RN, typename T> GPT2_AVX2 void tile(const operands & o, int64_t i, int64_t j) {
    __m256 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_setzero_ps();
    const T * w[RM];
    for (int r = 0; r < RM; ++r) w[r] = reinterpret_cast<const T *>(o.w + (i + r) * o.w_stride);
    const float * x[RN];
    for (int c = 0; c < RN; ++c) x[c] = o.x + (j + c) * o.K;
    for (int64_t k = 0; k < o.K; k += 8) {
        __m256 xv[RN];
        for (int c = 0; c < RN; ++c) {
            xv[c] = _mm256_loadu_ps(x[c] + k);
            if (o.round_x) xv[c] = _mm256_cvtph_ps(_mm256_cvtps_ph(xv[c], _MM_FROUND_TO_NEAREST_INT));
        }
        if (RN == 1 && k % 32 == 0) {   // one column: memory-bound; fetch the next rows' same place
            for (int r = 0; r < RM; ++r) _mm_prefetch(reinterpret_cast<const char *>(w[r] + k) + RM * o.w_stride, _MM_HINT_T0);
        }
        for (int r = 0; r < RM; ++r) {
            const __m256 wv = load8(w[r] + k);
            for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) o.c[(j + c) * o.M + i + r] = hsum(acc[r][c]);
}

template <int RM, typename T> GPT2_AVX2 void row_group(const operands & o, int64_t i) {
    int64_t j = 0;
    for (; j + 3 <= o.n; j += 3) tile<RM, 3, T>(o, i, j);
    if (o.n - j == 2) tile<RM, 2, T>(o, i, j);
    else if (o.n - j == 1) tile<RM, 1, T>(o, i, j);
}

template <typename T> GPT2_AVX2 void rows_avx2(const operands & o, int64_t i0, int64_t i1) {
    int64_t i = i0;
    if (o.n == 1) {   // memory-bound: the rows at a time that measured best (f16 of 2, 4, 8, 16; f32 of 2, 4, 8)
        constexpr int rows = std::is_same_v<T, float> ? 8 : 2;
        for (; i + rows <= i1; i += rows) tile<rows, 1, T>(o, i, 0);
    }
    for (; i + 4 <= i1; i += 4) row_group<4, T>(o, i);
    for (; i < i1; ++i) row_group<1, T>(o, i);
}

// The same tiles in sixteen lanes, summed as _mm512_reduce_add_ps sums them: what tinyBLAS
// computes where ggml's CPU backend is built for AVX-512 (simd::path()). K a multiple of 16.
template <int RM, int RN, typename T> GPT2_AVX512 void tile16(const operands & o, int64_t i, int64_t j) {
    __m512 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) acc[r][c] = _mm512_setzero_ps();
    const T * w[RM];
    for (int r = 0; r < RM; ++r) w[r] = reinterpret_cast<const T *>(o.w + (i + r) * o.w_stride);
    const float * x[RN];
    for (int c = 0; c < RN; ++c) x[c] = o.x + (j + c) * o.K;
    for (int64_t k = 0; k < o.K; k += 16) {
        __m512 xv[RN];
        for (int c = 0; c < RN; ++c) {
            xv[c] = _mm512_loadu_ps(x[c] + k);
            if (o.round_x) xv[c] = _mm512_cvtph_ps(_mm512_cvtps_ph(xv[c], _MM_FROUND_TO_NEAREST_INT));
        }
        if (RN == 1 && k % 32 == 0) {
            for (int r = 0; r < RM; ++r) _mm_prefetch(reinterpret_cast<const char *>(w[r] + k) + RM * o.w_stride, _MM_HINT_T0);
        }
        for (int r = 0; r < RM; ++r) {
            const __m512 wv = simd::load16(w[r] + k);
            for (int c = 0; c < RN; ++c) acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) o.c[(j + c) * o.M + i + r] = _mm512_reduce_add_ps(acc[r][c]);
}

template <int RM, typename T> GPT2_AVX512 void row_group16(const operands & o, int64_t i) {
    int64_t j = 0;
    for (; j + 3 <= o.n; j += 3) tile16<RM, 3, T>(o, i, j);
    if (o.n - j == 2) tile16<RM, 2, T>(o, i, j);
    else if (o.n - j == 1) tile16<RM, 1, T>(o, i, j);
}

template <typename T> GPT2_AVX512 void rows_avx512(const operands & o, int64_t i0, int64_t i1) {
    int64_t i = i0;
    if (o.n == 1) {   // memory-bound: 8 rows at a time measured best (bench/RESULTS.md, "AVX-512")
        for (; i + 8 <= i1; i += 8) tile16<8, 1, T>(o, i, 0);
    }
    for (; i + 4 <= i1; i += 4) row_group16<4, T>(o, i);
    for (; i < i1; ++i) row_group16<1, T>(o, i);
}
#endif

#ifdef GPT2_NODE_ARM
inline float32x4_t load4(const float * p) { return vld1q_f32(p); }
inline float32x4_t load4(const ggml_fp16_t * p) { return vcvt_f32_f16(vld1_f16(reinterpret_cast<const float16_t *>(p))); }

// Four lanes, one FMA chain per output along K, summed by vaddvq_f32: tinyBLAS's sums on NEON for
// f32 weights, and for f16 weights times x as f32 where ggml is built without FP16 arithmetic.
template <int RM, int RN, typename T> void tile4(const operands & o, int64_t i, int64_t j) {
    float32x4_t acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) acc[r][c] = vdupq_n_f32(0.0f);
    const T * w[RM];
    for (int r = 0; r < RM; ++r) w[r] = reinterpret_cast<const T *>(o.w + (i + r) * o.w_stride);
    const float * x[RN];
    for (int c = 0; c < RN; ++c) x[c] = o.x + (j + c) * o.K;
    for (int64_t k = 0; k < o.K; k += 4) {
        float32x4_t xv[RN];
        for (int c = 0; c < RN; ++c) {
            xv[c] = vld1q_f32(x[c] + k);
            if (o.round_x) xv[c] = vcvt_f32_f16(vcvt_f16_f32(xv[c]));
        }
        for (int r = 0; r < RM; ++r) {
            const float32x4_t wv = load4(w[r] + k);
            for (int c = 0; c < RN; ++c) acc[r][c] = vfmaq_f32(acc[r][c], xv[c], wv);
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) o.c[(j + c) * o.M + i + r] = vaddvq_f32(acc[r][c]);
}

// Eight half-precision lanes, one FMA chain per output along K, each half converted to f32 and
// added, then summed by vaddvq_f32: tinyBLAS's sums for f16 weights times x rounded to f16 where
// ggml is built with FP16 arithmetic (the half-precision sums lose accuracy, but they are the
// numbers ggml gives several rows, which a lone row must equal).
template <int RM, int RN> GPT2_FP16 void tile8h(const operands & o, int64_t i, int64_t j) {
    float16x8_t acc[RM][RN];
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) acc[r][c] = vdupq_n_f16(0.0f);
    const float16_t * w[RM];
    for (int r = 0; r < RM; ++r) w[r] = reinterpret_cast<const float16_t *>(o.w + (i + r) * o.w_stride);
    const float * x[RN];
    for (int c = 0; c < RN; ++c) x[c] = o.x + (j + c) * o.K;
    for (int64_t k = 0; k < o.K; k += 8) {
        float16x8_t xv[RN];
        for (int c = 0; c < RN; ++c) xv[c] = vcombine_f16(vcvt_f16_f32(vld1q_f32(x[c] + k)), vcvt_f16_f32(vld1q_f32(x[c] + k + 4)));
        for (int r = 0; r < RM; ++r) {
            const float16x8_t wv = vld1q_f16(w[r] + k);
            for (int c = 0; c < RN; ++c) acc[r][c] = vfmaq_f16(acc[r][c], xv[c], wv);
        }
    }
    for (int r = 0; r < RM; ++r)
        for (int c = 0; c < RN; ++c) {
            const float16x8_t a        = acc[r][c];
            o.c[(j + c) * o.M + i + r] = vaddvq_f32(vaddq_f32(vcvt_f32_f16(vget_low_f16(a)), vcvt_f32_f16(vget_high_f16(a))));
        }
}

template <int RM, typename T> void row_group_neon(const operands & o, int64_t i) {
    int64_t j = 0;
    if constexpr (std::is_same_v<T, ggml_fp16_t>) {
        if (o.half_sums) {
            for (; j + 3 <= o.n; j += 3) tile8h<RM, 3>(o, i, j);
            if (o.n - j == 2) tile8h<RM, 2>(o, i, j);
            else if (o.n - j == 1) tile8h<RM, 1>(o, i, j);
            return;
        }
    }
    for (; j + 3 <= o.n; j += 3) tile4<RM, 3, T>(o, i, j);
    if (o.n - j == 2) tile4<RM, 2, T>(o, i, j);
    else if (o.n - j == 1) tile4<RM, 1, T>(o, i, j);
}

template <typename T> void rows_neon(const operands & o, int64_t i0, int64_t i1) {
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) row_group_neon<4, T>(o, i);
    for (; i < i1; ++i) row_group_neon<1, T>(o, i);
}
#endif

template <typename T> void rows(const operands & o, int64_t i0, int64_t i1, simd::isa path) {
#ifdef GPT2_NODE_X86
    if (path == simd::isa::avx512 && o.K % 16 == 0) return rows_avx512<T>(o, i0, i1);
    if (path != simd::isa::portable) return rows_avx2<T>(o, i0, i1);
#endif
#ifdef GPT2_NODE_ARM
    if (path == simd::isa::neon) return rows_neon<T>(o, i0, i1);
#endif
    (void) path;
    rows_portable<T>(o, i0, i1);
}

void compute(ggml_tensor * dst, int nth, void * userdata, bool round_x) {
    const ggml_tensor * w = dst->src[0];
    const ggml_tensor * x = dst->src[1];
    operands            o;
    o.w        = static_cast<const char *>(w->data);
    o.w_stride = w->nb[1];
    o.x        = static_cast<const float *>(x->data);
    o.c        = static_cast<float *>(dst->data);
    o.K        = w->ne[0];
    o.M        = w->ne[1];
    o.n        = x->ne[1];
    o.round_x  = round_x;
    // Cache blocks are handed out one at a time, first come first served (work_queue.h).
    auto &          queue    = *static_cast<work_queue *>(userdata);
    const int64_t   n_blocks = (o.M + k_block_rows - 1) / k_block_rows;
    const simd::isa path     = simd::path();
    // as tinyBLAS sums f16 weights times rounded x where ggml is built with FP16 arithmetic
    o.half_sums = path == simd::isa::neon && round_x && w->type == GGML_TYPE_F16 && ggml_cpu_has_fp16_va();
    for (int64_t b = queue.take(); b < n_blocks; b = queue.take()) {
        const int64_t i0 = b * k_block_rows, i1 = std::min(o.M, i0 + k_block_rows);
        if (w->type == GGML_TYPE_F16) rows<ggml_fp16_t>(o, i0, i1, path);
        else rows<float>(o, i0, i1, path);
    }
    queue.finish(nth);
}

void compute_f32_x(ggml_tensor * dst, int /*ith*/, int nth, void * userdata) { compute(dst, nth, userdata, false); }
void compute_f16_x(ggml_tensor * dst, int /*ith*/, int nth, void * userdata) { compute(dst, nth, userdata, true); }

}   // namespace

int64_t ggml_tinyblas_min_rows(ggml_type type) {
    // ggml-cpu's llamafile_sgemm: never below 2 rows; on NEON f32 weights from 4, and f16 weights
    // (times x rounded to f16) from 8 where built with FP16 arithmetic.
#if defined(__aarch64__)
    if (type == GGML_TYPE_F32) return 4;
    if (type == GGML_TYPE_F16 && ggml_cpu_has_fp16_va()) return 8;
#endif
    (void) type;
    return 2;
}

bool ggml_tinyblas_rounds_x(ggml_type type) {
    // On x86 and on NEON with FP16 arithmetic tinyBLAS takes f16 weights only with x converted to
    // f16 (ggml's second try, after the conversion); on other NEON builds it takes x as f32 (its
    // first try, before any conversion).
#if defined(__aarch64__)
    return type == GGML_TYPE_F16 && ggml_cpu_has_fp16_va();
#else
    return type == GGML_TYPE_F16;
#endif
}

bool dense_matmul_supports(const ggml_tensor * w, const ggml_tensor * x) {
    return (w->type == GGML_TYPE_F16 || w->type == GGML_TYPE_F32) && w->ne[0] % 8 == 0 && ggml_is_contiguous(w) &&
        x->type == GGML_TYPE_F32 && x->ne[0] == w->ne[0] && ggml_is_contiguous(x);
}

ggml_tensor * dense_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, work_queue & queue, bool round_x) {
    GGML_ASSERT(dense_matmul_supports(w, x));
    ggml_tensor * args[] = { w, x };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w->ne[1], x->ne[1], 1, 1, args, 2, round_x ? compute_f16_x : compute_f32_x, GGML_N_TASKS_MAX,
                          &queue);
}

}   // namespace gpt2
