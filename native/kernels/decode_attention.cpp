#include "kernels/decode_attention.h"

#include "kernels/simd_x86.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

namespace gpt2 {

namespace {

// One decoding row's heads h0 .. h1: per head, softmax(q·kᵀ·scale)·v over n cells. A cell's keys
// of every head are one row of the cache (head h at hd·h), likewise its values.
struct heads_task {
    const float * q;   // the row's queries, head h at q + hd·h
    const char *  k;   // the region's first cell; cells k_stride bytes apart
    const char *  v;
    size_t        k_stride, v_stride;
    int           n;   // cells
    int           hd;
    int           h0, h1;
    float         scale;
    float *       out;   // the row's output, head h at out + hd·h
};

// w[0..n) holds scaled scores: turns them into softmax weights, returns 1 / their sum.
float softmax_in_place(float * w, int n) {
    float m = w[0];
    for (int c = 1; c < n; ++c) m = std::max(m, w[c]);
    float sum = 0.0f;
    for (int c = 0; c < n; ++c) {
        w[c] = std::exp(w[c] - m);
        sum += w[c];
    }
    return 1.0f / sum;
}

// Portable path: the head's keys and values converted to f32 once, then plain loops that a
// compiler vectorizes (eight partial sums, so that it need not reorder a reduction).
template <typename T> const float * as_f32(const char * base, size_t stride, int n, int hd, std::vector<float> & buf) {
    if constexpr (std::is_same_v<T, float>) {
        if (stride == hd * sizeof(float)) return reinterpret_cast<const float *>(base);
    }
    buf.resize((size_t) n * hd);
    for (int c = 0; c < n; ++c) {
        const T * row = reinterpret_cast<const T *>(base + c * stride);
        if constexpr (std::is_same_v<T, float>) std::memcpy(&buf[(size_t) c * hd], row, hd * sizeof(float));
        else ggml_cpu_fp16_to_fp32(row, &buf[(size_t) c * hd], hd);
    }
    return buf.data();
}

// Head h of the task through the portable path.
template <typename T> void head_portable(const heads_task & t, int h, std::vector<float> & w) {
    thread_local std::vector<float> kbuf, vbuf;
    const int                       hd  = t.hd;
    const float *                   q   = t.q + (size_t) h * hd;
    float *                         out = t.out + (size_t) h * hd;
    const float *                   k   = as_f32<T>(t.k + (size_t) h * hd * sizeof(T), t.k_stride, t.n, hd, kbuf);
    w.resize(t.n);
    for (int c = 0; c < t.n; ++c) {
        const float * kc     = k + (size_t) c * hd;
        float         acc[8] = {};
        int           d      = 0;
        for (; d + 8 <= hd; d += 8) {
            for (int l = 0; l < 8; ++l) acc[l] += q[d + l] * kc[d + l];
        }
        float s = 0.0f;
        for (int l = 0; l < 8; ++l) s += acc[l];
        for (; d < hd; ++d) s += q[d] * kc[d];
        w[c] = s * t.scale;
    }
    const float   inv = softmax_in_place(w.data(), t.n);
    const float * v   = as_f32<T>(t.v + (size_t) h * hd * sizeof(T), t.v_stride, t.n, hd, vbuf);
    std::fill(out, out + hd, 0.0f);
    for (int c = 0; c < t.n; ++c) {
        const float * vc = v + (size_t) c * hd;
        for (int d = 0; d < hd; ++d) out[d] += w[c] * vc[d];
    }
    for (int d = 0; d < hd; ++d) out[d] *= inv;
}

#ifdef GPT2_NODE_X86
using simd::hsum;
using simd::load8;

// out[d0, d0 + 8·NB) = Σ_c w[c]·v_c[d0, ...): NB independent accumulators hide the FMA latency.
template <int NB, typename T> GPT2_AVX2 void weighted_values(const heads_task & t, const char * v, float * out, const float * w, int d0) {
    __m256 acc[NB];
    for (int b = 0; b < NB; ++b) acc[b] = _mm256_setzero_ps();
    for (int c = 0; c < t.n; ++c) {
        const T *    vc = reinterpret_cast<const T *>(v + c * t.v_stride) + d0;
        const __m256 wc = _mm256_set1_ps(w[c]);
        for (int b = 0; b < NB; ++b) acc[b] = _mm256_fmadd_ps(wc, load8(vc + 8 * b), acc[b]);
    }
    for (int b = 0; b < NB; ++b) _mm256_storeu_ps(out + d0 + 8 * b, acc[b]);
}

// Head h alone, its cells four at a time (four independent FMA chains); needs hd % 8 == 0.
template <typename T> GPT2_AVX2 void head_avx2(const heads_task & t, int h, std::vector<float> & w) {
    const int     hd  = t.hd;
    const char *  k   = t.k + (size_t) h * hd * sizeof(T);
    const char *  v   = t.v + (size_t) h * hd * sizeof(T);
    const float * q   = t.q + (size_t) h * hd;
    float *       out = t.out + (size_t) h * hd;
    w.resize(t.n);
    // scores, four cells at a time: four independent FMA chains
    int c = 0;
    for (; c + 4 <= t.n; c += 4) {
        const T * k0 = reinterpret_cast<const T *>(k + (c + 0) * t.k_stride);
        const T * k1 = reinterpret_cast<const T *>(k + (c + 1) * t.k_stride);
        const T * k2 = reinterpret_cast<const T *>(k + (c + 2) * t.k_stride);
        const T * k3 = reinterpret_cast<const T *>(k + (c + 3) * t.k_stride);
        __m256    a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < hd; d += 8) {
            const __m256 qd = _mm256_loadu_ps(q + d);
            a0              = _mm256_fmadd_ps(qd, load8(k0 + d), a0);
            a1              = _mm256_fmadd_ps(qd, load8(k1 + d), a1);
            a2              = _mm256_fmadd_ps(qd, load8(k2 + d), a2);
            a3              = _mm256_fmadd_ps(qd, load8(k3 + d), a3);
        }
        w[c + 0] = hsum(a0) * t.scale;
        w[c + 1] = hsum(a1) * t.scale;
        w[c + 2] = hsum(a2) * t.scale;
        w[c + 3] = hsum(a3) * t.scale;
    }
    for (; c < t.n; ++c) {
        const T * kc = reinterpret_cast<const T *>(k + c * t.k_stride);
        __m256    a  = _mm256_setzero_ps();
        for (int d = 0; d < hd; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load8(kc + d), a);
        w[c] = hsum(a) * t.scale;
    }
    const float inv = softmax_in_place(w.data(), t.n);
    int         d0  = 0;
    for (; d0 + 64 <= hd; d0 += 64) weighted_values<8, T>(t, v, out, w.data(), d0);
    for (; d0 < hd; d0 += 8) weighted_values<1, T>(t, v, out, w.data(), d0);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (int d = 0; d < hd; d += 8) _mm256_storeu_ps(out + d, _mm256_mul_ps(_mm256_loadu_ps(out + d), vinv));
}

// The task's heads cell by cell: a cell's keys (then values) of all those heads are contiguous in
// the cache and are read in one sweep. Head by head, 128 strided bytes per cell, the reads ran
// at half of the memory's bandwidth. Per head the arithmetic is unchanged: each score one
// eight-lane FMA chain along the head, then its horizontal sum; each output lane one FMA chain
// over the cells, in order (needs hd % 8 == 0).
template <typename T> GPT2_AVX2 void heads_avx2(const heads_task & t, std::vector<float> & w, std::vector<float> & acc) {
    const int     hd = t.hd, n = t.n, nh = t.h1 - t.h0;
    const float * q = t.q + (size_t) t.h0 * hd;
    w.resize((size_t) nh * (n + 1));   // w[i·n + c]: head h0 + i, cell c; then the heads' 1 / Σ
    for (int c = 0; c < n; ++c) {
        const T * kc = reinterpret_cast<const T *>(t.k + c * t.k_stride) + (size_t) t.h0 * hd;
        int       i  = 0;
        for (; i + 4 <= nh; i += 4) {   // four heads: four independent FMA chains
            const float * q0 = q + (size_t) i * hd;
            const T *     k0 = kc + (size_t) i * hd;
            __m256        a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int d = 0; d < hd; d += 8) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), load8(k0 + d), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + hd + d), load8(k0 + hd + d), a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + 2 * hd + d), load8(k0 + 2 * hd + d), a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + 3 * hd + d), load8(k0 + 3 * hd + d), a3);
            }
            w[(size_t) (i + 0) * n + c] = hsum(a0) * t.scale;
            w[(size_t) (i + 1) * n + c] = hsum(a1) * t.scale;
            w[(size_t) (i + 2) * n + c] = hsum(a2) * t.scale;
            w[(size_t) (i + 3) * n + c] = hsum(a3) * t.scale;
        }
        for (; i < nh; ++i) {
            __m256 a = _mm256_setzero_ps();
            for (int d = 0; d < hd; d += 8)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t) i * hd + d), load8(kc + (size_t) i * hd + d), a);
            w[(size_t) i * n + c] = hsum(a) * t.scale;
        }
    }
    float * inv = &w[(size_t) nh * n];
    for (int i = 0; i < nh; ++i) inv[i] = softmax_in_place(&w[(size_t) i * n], n);
    // the heads' outputs accumulate in `acc` (nh·hd floats, in L1) while the cells pass once
    acc.assign((size_t) nh * hd, 0.0f);
    for (int c = 0; c < n; ++c) {
        const T * vc = reinterpret_cast<const T *>(t.v + c * t.v_stride) + (size_t) t.h0 * hd;
        for (int i = 0; i < nh; ++i) {
            const __m256 wc = _mm256_set1_ps(w[(size_t) i * n + c]);
            float *      a  = &acc[(size_t) i * hd];
            const T *    vi = vc + (size_t) i * hd;
            for (int d = 0; d < hd; d += 8) _mm256_storeu_ps(a + d, _mm256_fmadd_ps(wc, load8(vi + d), _mm256_loadu_ps(a + d)));
        }
    }
    float * out = t.out + (size_t) t.h0 * hd;
    for (int i = 0; i < nh; ++i) {
        const __m256 vinv = _mm256_set1_ps(inv[i]);
        for (int d = 0; d < hd; d += 8)
            _mm256_storeu_ps(out + (size_t) i * hd + d, _mm256_mul_ps(_mm256_loadu_ps(&acc[(size_t) i * hd + d]), vinv));
    }
}

#endif

template <typename T> void run_heads(const heads_task & t, bool use_simd) {
    thread_local std::vector<float> w, acc;
#ifdef GPT2_NODE_X86
    if (use_simd && t.hd % 8 == 0 && t.h1 - t.h0 == 1) return head_avx2<T>(t, t.h0, w);
    if (use_simd && t.hd % 8 == 0) return heads_avx2<T>(t, w, acc);
#endif
    (void) use_simd;
    for (int h = t.h0; h < t.h1; ++h) head_portable<T>(t, h, w);
}

// A task is a whole row when rows are enough to keep every thread busy, else one head of a row
// (a lone stream's 12 heads go to 12 tasks, each taking its cells four at a time). Either way a
// head's numbers are the same: batch invariance.
int head_groups(int64_t n_rows, int n_threads, int n_head) { return n_rows >= 4 * (int64_t) n_threads ? 1 : n_head; }

void compute(ggml_tensor * dst, int /*ith*/, int nth, void * userdata) {
    decode_attention_state & state    = *static_cast<decode_attention_state *>(userdata);
    const ggml_tensor *      qkv      = dst->src[0];
    const ggml_tensor *      k        = dst->src[1];
    const ggml_tensor *      v        = dst->src[2];
    const ggml_tensor *      rows     = dst->src[3];
    const int                H        = state.n_head;
    const int                hd       = (int) (qkv->ne[0] / 3) / H;
    const int64_t            n_rows   = rows->ne[1];
    const int                G        = head_groups(n_rows, nth, H);
    const int64_t            n_tasks  = n_rows * G;
    const float              scale    = 1.0f / std::sqrt((float) hd);
    const bool               use_simd = simd::enabled();
    for (int64_t i = state.queue.take(); i < n_tasks; i = state.queue.take()) {
        const int32_t * r = reinterpret_cast<const int32_t *>(static_cast<const char *>(rows->data) + (i / G) * rows->nb[1]);
        const int       g = (int) (i % G);
        heads_task      t;
        t.q        = reinterpret_cast<const float *>(static_cast<const char *>(qkv->data) + r[0] * qkv->nb[1]);
        t.k        = static_cast<const char *>(k->data) + (size_t) r[1] * k->nb[1];
        t.v        = static_cast<const char *>(v->data) + (size_t) r[1] * v->nb[1];
        t.k_stride = k->nb[1];
        t.v_stride = v->nb[1];
        t.n        = r[2];
        t.hd       = hd;
        t.h0       = H * g / G;
        t.h1       = H * (g + 1) / G;
        t.scale    = scale;
        t.out      = reinterpret_cast<float *>(static_cast<char *>(dst->data) + r[0] * dst->nb[1]);
        if (k->type == GGML_TYPE_F16) run_heads<ggml_fp16_t>(t, use_simd);
        else run_heads<float>(t, use_simd);
    }
    state.queue.finish(nth);
}

}   // namespace

ggml_tensor * decode_attention(ggml_context * ctx, ggml_tensor * qkv, ggml_tensor * k, ggml_tensor * v, ggml_tensor * rows, int n_head,
                               decode_attention_state & state) {
    GGML_ASSERT(qkv->type == GGML_TYPE_F32 && rows->type == GGML_TYPE_I32 && k->type == v->type &&
                (k->type == GGML_TYPE_F16 || k->type == GGML_TYPE_F32));
    GGML_ASSERT(n_head > 0 && qkv->ne[0] % (3 * n_head) == 0);   // the graph's shapes, never user input
    state.n_head         = n_head;
    ggml_tensor * args[] = { qkv, k, v, rows };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, qkv->ne[0] / 3, qkv->ne[1], 1, 1, args, 4, compute, GGML_N_TASKS_MAX, &state);
}

}   // namespace gpt2
