#include "kernels/gelu.h"

#include "kernels/simd_x86.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <cstdint>
#include <mutex>
#include <vector>

namespace gpt2 {

namespace {

// GELU of every f16 value, as ggml computes it, indexed by the f16 bits (f32 entries: the
// gather then needs no conversion and cannot read past the end).
const float * gelu_table() {
    static std::vector<float> table;
    static std::once_flag     once;
    std::call_once(once, [] {
        constexpr int64_t    n = 1 << 16;
        std::vector<uint8_t> mem(2 * n * sizeof(float) + 4 * ggml_tensor_overhead() + ggml_graph_overhead() + (64 << 10));
        ggml_init_params     ip  = { mem.size(), mem.data(), false };
        ggml_context *       ctx = ggml_init(ip);
        ggml_tensor *        x   = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
        for (int64_t i = 0; i < n; ++i) static_cast<float *>(x->data)[i] = ggml_fp16_to_fp32((ggml_fp16_t) i);
        ggml_tensor * y  = ggml_gelu(ctx, x);
        ggml_cgraph * gf = ggml_new_graph(ctx);
        ggml_build_forward_expand(gf, y);
        ggml_graph_compute_with_ctx(ctx, gf, 1);
        table.assign(static_cast<const float *>(y->data), static_cast<const float *>(y->data) + n);
        ggml_free(ctx);
    });
    return table.data();
}

#ifdef GPT2_NODE_X86
// ggml's per-element rule: x <= -10 gives 0, x >= 10 gives x, anything else (NaN included) the
// table's entry for x rounded to f16 (to nearest even, as the F16C conversion ggml uses).
GPT2_AVX2 void row_avx2(const float * x, float * y, int64_t n, const float * table) {
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    int64_t      i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256  v = _mm256_loadu_ps(x + i);
        const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);   // as F16C's scalar conversion
        const __m256  g = _mm256_i32gather_ps(table, _mm256_cvtepu16_epi32(h), 4);
        __m256        r = _mm256_blendv_ps(g, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
        r               = _mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(v, lo, _CMP_LE_OQ));
        _mm256_storeu_ps(y + i, r);
    }
    for (; i < n; ++i) {
        const float v = x[i];
        y[i]          = v <= -10.0f ? 0.0f : v >= 10.0f ? v : table[_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT)];
    }
}
#endif

void compute(ggml_tensor * dst, int ith, int nth, void * /*userdata*/) {
    const ggml_tensor * src       = dst->src[0];
    const int64_t       n_per_row = src->ne[0], n_rows = ggml_nrows(src);
    const int64_t       r0 = n_rows * ith / nth, r1 = n_rows * (ith + 1) / nth;
    const float *       table = gelu_table();
    for (int64_t r = r0; r < r1; ++r) {
        const float * x = reinterpret_cast<const float *>(static_cast<const char *>(src->data) + r * src->nb[1]);
        float *       y = reinterpret_cast<float *>(static_cast<char *>(dst->data) + r * dst->nb[1]);
#ifdef GPT2_NODE_X86
        row_avx2(x, y, n_per_row, table);
#else
        (void) x;
        (void) y;
        (void) n_per_row;
        (void) table;   // not reached: gelu_lookup_available() is false
#endif
    }
}

}   // namespace

bool gelu_lookup_available() {
#ifdef GPT2_NODE_X86
    return simd::enabled();
#else
    return false;
#endif
}

ggml_tensor * gelu_lookup(ggml_context * ctx, ggml_tensor * x) {
    GGML_ASSERT(x->type == GGML_TYPE_F32 && ggml_is_contiguous(x) && x->ne[2] == 1 && x->ne[3] == 1);
    gelu_table();   // built here, on the thread that builds the graph, not inside a compute
    // In place, as ggml's unary ops may be: the allocator then needs no second [F, n] buffer
    // (6 MiB of compute buffer for 512 rows of 124M)
    return ggml_custom_inplace(ctx, x, nullptr, 0, compute, GGML_N_TASKS_MAX, nullptr);
}

}   // namespace gpt2
