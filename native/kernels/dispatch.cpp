#include "kernels/dispatch.h"

#include "kernels/dense_matmul.h"
#include "kernels/gelu.h"
#include "kernels/q4k_interleaved.h"
#include "kernels/quant_matmul.h"
#include "kernels/simd.h"
#include "kernels/simd_x86.h"

#include "util/log.h"

#include "ggml-cpu.h"
#include "ggml.h"

#include <cstring>
#include <string>

namespace gpt2 {

void note_kernel_path(cpu_op_state * cpu) {
    const simd::isa path = simd::path();
#ifdef GPT2_NODE_X86
    const simd::int8_dot_isa dot = simd::int8_dot();
    if (path != simd::isa::portable && cpu->reported_int8 != static_cast<int>(dot)) {
        cpu->reported_int8                = static_cast<int>(dot);
        static const char * const names[] = { "AVX2 (maddubs + madd)", "AVX-VNNI", "AVX-512 VNNI" };   // by int8_dot_isa
        log_write(log_level::debug, "gpt2-node", std::string("CPU int8 dot products: ") + names[static_cast<int>(dot)] + "\n");
    }
#endif
    if (cpu->reported_path == static_cast<int>(path)) return;
    cpu->reported_path = static_cast<int>(path);
    std::string text   = "CPU kernels: ";
    if (path != simd::isa::portable) text += std::string("ours, ") + simd::path_name(path);
    else if (simd::path_cap() && std::strcmp(simd::path_cap(), "portable") == 0) text += "portable (GPT2_NODE_KERNELS=portable)";
    else text += "portable (no AVX2 or NEON on this CPU, or ggml built without it)";
    log_write(log_level::debug, "gpt2-node", text + "\n");
}

namespace {

// Rows from which a matmul is a prompt chunk's rather than a decoding step's (up to 32 streams).
constexpr int64_t k_prompt_rows = 64;

// Where ggml's CPU backend is built with VNNI's int8 dot products (AVX-512-VNNI or AVX-VNNI), its
// tinyBLAS multiplies q8_0 and q4_0 prompt chunks faster than our AVX2 kernel, with the same bits
// (the same integer sums; the load-time probe checks). Decoding steps stay ours: tinyBLAS splits
// the work up front, and a many-stream step then waits at its barriers (quant_matmul.h).
// On arm64 ours only takes the lone row, which ggml multiplies otherwise than two or more; from
// two rows ggml's tinyBLAS_Q0_ARM gives the same sums (quant_matmul.h), tuned for those cores.
bool ggml_takes_quant_rows(const ggml_tensor * w, const ggml_tensor * x) {
#if defined(__aarch64__)
    (void) w;
    return x->ne[1] >= 2;
#else
    static const bool vnni = ggml_cpu_has_avx512_vnni() || ggml_cpu_has_avx_vnni();
    return vnni && x->ne[1] >= k_prompt_rows && (w->type == GGML_TYPE_Q8_0 || w->type == GGML_TYPE_Q4_0);
#endif
}

}   // namespace

// Our quantized matmul (quant_matmul.h) gives ggml's bits for every row count, decoding steps and
// prompt chunks alike. For q4_K as stored, ggml's alternative is one dot product per output.
ggml_tensor * block_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu) {
    // Interleaved q4_K (the decoder makes them on the CPU path only, where `cpu` is given): no
    // kernel but ours can read them.
    if (cpu && q4k_is_interleaved(w)) return quant_matmul(ctx, w, x, cpu->matmul);
    if (cpu && cpu->own_few_rows && x->ne[1] < ggml_tinyblas_min_rows(w->type) && dense_matmul_supports(w, x)) {
        return dense_matmul(ctx, w, x, cpu->matmul, ggml_tinyblas_rounds_x(w->type));
    }
    if (cpu && cpu->own_quant_blocks && quant_matmul_supports(w, x) && !ggml_takes_quant_rows(w, x)) {
        return quant_matmul(ctx, w, x, cpu->matmul);
    }
    return ggml_mul_mat(ctx, w, x);
}

ggml_tensor * lm_head(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu) {
    if (!cpu) return ggml_mul_mat(ctx, w, x);
    if (q4k_is_interleaved(w)) return quant_matmul(ctx, w, x, cpu->matmul);   // q4_K: ours only can read it
    // f16 and f32: our own kernel (dense_matmul.h says why).
    if (dense_matmul_supports(w, x)) return dense_matmul(ctx, w, x, cpu->matmul, /*round_x =*/false);
    // q8_0, q4_0 and q4_K: our own kernel too (quant_matmul.h), the same bits as ggml's.
    if (quant_matmul_supports(w, x)) return quant_matmul(ctx, w, x, cpu->matmul);
    // Others: ggml's CPU matmul takes llamafile's tinyBLAS only for an output count that is a
    // multiple of 4, and 50257 is not: the rows past the last multiple of 4 go through a matmul
    // of their own (whether the two kernels give the same bits, the load-time probe checks).
    const int64_t V = w->ne[1], V4 = V / 4 * 4;
    if (V4 == V || V4 == 0) return ggml_mul_mat(ctx, w, x);
    ggml_tensor * bulk = ggml_mul_mat(ctx, ggml_view_2d(ctx, w, w->ne[0], V4, w->nb[1], 0), x);                   // [V4, n]
    ggml_tensor * tail = ggml_mul_mat(ctx, ggml_view_2d(ctx, w, w->ne[0], V - V4, w->nb[1], V4 * w->nb[1]), x);   // [V - V4, n]
    return ggml_concat(ctx, bulk, tail, 0);                                                                       // [V, n]
}

ggml_tensor * gelu(ggml_context * ctx, ggml_tensor * x, cpu_op_state * cpu) {
    return cpu && gelu_lookup_available() ? gelu_lookup(ctx, x) : ggml_gelu(ctx, x);
}

ggml_tensor * token_rows(ggml_context * ctx, ggml_tensor * embd, ggml_tensor * tied_head, ggml_tensor * ids) {
    // Without our SIMD kernels (GPT2_NODE_KERNELS=portable) ggml's lookup reads the original:
    // the tests compare the two to the bit.
    if (tied_head && q4k_is_interleaved(tied_head) && simd::enabled()) return q4k_interleaved_get_rows(ctx, tied_head, ids);
    return ggml_get_rows(ctx, embd, ids);
}

}   // namespace gpt2
