// The GPT-2 forward pass (Radford et al. 2019): pre-LayerNorm blocks of causal multi-head
// self-attention and a GELU MLP, learned position embeddings, final LayerNorm, LM head.
//
// ggml dims are column-first: [n_embd, n_tokens] is n_tokens columns of n_embd values, and
// ggml_mul_mat(w, x) computes x · wᵀ, i.e. PyTorch's F.linear(x, w) with w of ggml shape [in, out].
#include "gpt/graph.h"

#include "gpt/decode_attention.h"
#include "gpt/gelu.h"
#include "gpt/kv_cache.h"
#include "gpt/model.h"
#include "gpt/q4k_interleaved.h"
#include "gpt/quant_matmul.h"
#include "gpt/simd_x86.h"

#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace gpt2 {

size_t graph_max_nodes(const model & m, size_t n_segments) {
    return 64 + m.hp.n_layer * (32 + 16 * n_segments);
}

// LayerNorm over the embedding dim: (x - mean) / sqrt(var + eps) * g + b
static ggml_tensor * layer_norm(ggml_context * ctx, ggml_tensor * x, ggml_tensor * g, ggml_tensor * b, float eps) {
    x = ggml_norm(ctx, x, eps);     // [n_embd, n]
    x = ggml_mul(ctx, x, g);        // [n_embd, n]
    return ggml_add(ctx, x, b);     // [n_embd, n]
}

// F.linear(x, w, b)
static ggml_tensor * linear(ggml_context * ctx, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b, cpu_op_state * cpu) {
    return ggml_add(ctx, block_matmul(ctx, w, x, cpu), b);   // [n_out, n]
}

// Our quantized matmul (quant_matmul.h) gives ggml's bits, for every row count: decoding steps
// and prompt chunks alike (with its columns in blocks that stay in L2 it measured 3-9 % faster
// than tinyBLAS at 128-512 rows, q8_0). For q4_K as stored, ggml's alternative is one dot
// product per output.

ggml_tensor * block_matmul(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu) {
    // Interleaved q4_K (the decoder makes them on the CPU path only, where `cpu` is given): no
    // kernel but ours can read them.
    if (cpu && q4k_is_interleaved(w)) return quant_matmul(ctx, w, x, cpu->matmul);
    if (cpu && cpu->own_lone_rows && x->ne[1] == 1 && dense_matmul_supports(w, x)) {
        return dense_matmul(ctx, w, x, cpu->matmul, /*round_x =*/ w->type == GGML_TYPE_F16);
    }
    if (cpu && cpu->own_quant_blocks && quant_matmul_supports(w, x)) {
        return quant_matmul(ctx, w, x, cpu->matmul);
    }
    return ggml_mul_mat(ctx, w, x);
}

ggml_tensor * lm_head(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, cpu_op_state * cpu) {
    if (!cpu) return ggml_mul_mat(ctx, w, x);
    if (q4k_is_interleaved(w)) return quant_matmul(ctx, w, x, cpu->matmul);   // q4_K: ours only can read it
    // f16 and f32: our own kernel (dense_matmul.h says why).
    if (dense_matmul_supports(w, x)) return dense_matmul(ctx, w, x, cpu->matmul, /*round_x =*/ false);
    // q8_0, q4_0 and q4_K: our own kernel too (quant_matmul.h), the same bits as ggml's.
    if (quant_matmul_supports(w, x)) return quant_matmul(ctx, w, x, cpu->matmul);
    // Others: ggml's CPU matmul takes llamafile's tinyBLAS only for an output count that is a
    // multiple of 4, and 50257 is not: the rows past the last multiple of 4 go through a matmul
    // of their own (whether the two kernels give the same bits, the load-time probe checks).
    const int64_t V = w->ne[1], V4 = V / 4 * 4;
    if (V4 == V || V4 == 0) return ggml_mul_mat(ctx, w, x);
    ggml_tensor * bulk = ggml_mul_mat(ctx, ggml_view_2d(ctx, w, w->ne[0], V4, w->nb[1], 0), x);                    // [V4, n]
    ggml_tensor * tail = ggml_mul_mat(ctx, ggml_view_2d(ctx, w, w->ne[0], V - V4, w->nb[1], V4 * w->nb[1]), x);   // [V - V4, n]
    return ggml_concat(ctx, bulk, tail, 0);                                                                         // [V, n]
}

ggml_cgraph * graph_build(ggml_context * ctx, const model & m, const kv_cache & kv, const batch & b, cpu_op_state * cpu) {
    const hparams & hp = m.hp;
    const int64_t E     = hp.n_embd;
    const int64_t H     = hp.n_head;
    const int64_t hd    = hp.n_embd_head();
    const int64_t T     = (int64_t) b.tokens.size();
    const int64_t n_out = (int64_t) b.out_rows.size();
    const bool    all_rows = n_out == T;
    const float   kq_scale = 1.0f / std::sqrt((float) hd);

    ggml_cgraph * gf = ggml_new_graph_custom(ctx, graph_max_nodes(m, b.segments.size()), false);

    ggml_tensor * tokens = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T);
    ggml_set_name(tokens, "tokens");
    ggml_set_input(tokens);
    ggml_tensor * pos = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T);
    ggml_set_name(pos, "pos");
    ggml_set_input(pos);
    // The cache cell of each row's key and value.
    ggml_tensor * kv_cells = ggml_new_tensor_1d(ctx, GGML_TYPE_I64, T);
    ggml_set_name(kv_cells, "kv_cells");
    ggml_set_input(kv_cells);
    ggml_tensor * out_ids = nullptr;
    if (!all_rows) {
        out_ids = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, n_out);
        ggml_set_name(out_ids, "out_ids");
        ggml_set_input(out_ids);
    }
    // The decoding rows' (batch row, first cell, cells) for decode_attention().
    ggml_tensor * dec_rows = nullptr;
    const int64_t n_dec = std::count_if(b.segments.begin(), b.segments.end(), [](const batch_segment & s) { return s.n_tokens == 1; });
    if (cpu && n_dec > 0) {
        dec_rows = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, 3, n_dec);
        ggml_set_name(dec_rows, "dec_rows");
        ggml_set_input(dec_rows);
    }
    // Causal masks, one per multi-token segment: token i of the segment sees cache cells 0..n_past+i.
    std::vector<ggml_tensor *> masks(b.segments.size(), nullptr);
    for (size_t s = 0; s < b.segments.size(); ++s) {
        const batch_segment & seg = b.segments[s];
        if (seg.n_tokens == 1) continue;   // a single token sees every cell: no mask
        masks[s] = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, seg.n_past + seg.n_tokens, seg.n_tokens);
        ggml_set_name(masks[s], ("kq_mask." + std::to_string(s)).c_str());
        ggml_set_input(masks[s]);
    }

    // x = wte[tokens] + wpe[pos]. A tied q4_K head interleaved by the decoder holds wte too: the
    // lookup reads it there, so that the original's pages, released, are not read back (to look
    // up a few rows, the system's fault-around maps in their neighbours: measured 25 MiB back
    // after a 512-token prompt, 124M). Without our SIMD kernels (GPT2_NODE_PORTABLE_KERNELS=1)
    // ggml's lookup reads the original: the tests compare the two to the bit.
    ggml_tensor * wte = m.tied_output && q4k_is_interleaved(m.output) && simd::enabled()
                            ? q4k_interleaved_get_rows(ctx, m.output, tokens)
                            : ggml_get_rows(ctx, m.token_embd, tokens);   // [E, T]
    ggml_tensor * x = ggml_add(ctx, wte, ggml_get_rows(ctx, m.position_embd, pos));   // [E, T]

    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const layer & L = m.layers[il];

        // qkv = c_attn(ln_1(x))
        ggml_tensor * cur = layer_norm(ctx, x, L.attn_norm, L.attn_norm_b, hp.norm_eps);   // [E, T]
        ggml_tensor * qkv = linear(ctx, cur, L.attn_qkv, L.attn_qkv_b, cpu);                    // [3E, T]
        const size_t  esz = ggml_element_size(qkv);

        // Store the batch's new keys and values, each row at its cell (its slot's cell n_past + i),
        // two nodes for all segments; the attention nodes below come later in the graph, and nodes
        // run in order, so they see the stores.
        ggml_tensor * kc = kv.k[il];
        ggml_tensor * vc = kv.v[il];
        ggml_build_forward_expand(gf, ggml_set_rows(ctx, kc, ggml_view_2d(ctx, qkv, E, T, qkv->nb[1], E * esz), kv_cells));       // [E, T] into [E, cells]
        ggml_build_forward_expand(gf, ggml_set_rows(ctx, vc, ggml_view_2d(ctx, qkv, E, T, qkv->nb[1], 2 * E * esz), kv_cells));   // [E, T] into [E, cells]

        // Attention: each sequence attends to its own cache region only. All decoding rows in one
        // node (CPU), prompt chunks one flash-attention node each.
        ggml_tensor * attn = dec_rows ? decode_attention(ctx, qkv, kc, vc, dec_rows, hp, cpu->attention) : nullptr;
        if (!attn && b.segments.size() > 1) attn = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, E, T);
        for (size_t s = 0; s < b.segments.size(); ++s) {
            const batch_segment & seg = b.segments[s];
            if (dec_rows && seg.n_tokens == 1) continue;
            const int64_t n    = seg.n_tokens;
            const int64_t n_kv = seg.n_past + seg.n_tokens;
            const size_t  off  = seg.first * qkv->nb[1];
            const size_t cell0 = (size_t) seg.slot * kv.n_ctx;

            ggml_tensor * q = ggml_view_3d(ctx, qkv, hd, H, n, hd * esz, qkv->nb[1], off);   // [hd, H, n]
            // the slot's first n_kv cells, per head
            ggml_tensor * k = ggml_view_3d(ctx, kc, hd, n_kv, H, kc->nb[1], hd * ggml_element_size(kc), cell0 * kc->nb[1]); // [hd, n_kv, H]
            ggml_tensor * v = ggml_view_3d(ctx, vc, hd, n_kv, H, vc->nb[1], hd * ggml_element_size(vc), cell0 * vc->nb[1]); // [hd, n_kv, H]

            // softmax(q·kᵀ/√hd + mask)·v
            ggml_tensor * o = ggml_flash_attn_ext(ctx, ggml_permute(ctx, q, 0, 2, 1, 3) /* [hd, n, H] */, k, v,
                                                  masks[s], kq_scale, 0.0f, 0.0f);                 // [hd, H, n]
            ggml_flash_attn_ext_set_prec(o, GGML_PREC_F32);
            o = ggml_reshape_2d(ctx, o, E, n);                                                     // [E, n]

            attn = attn ? ggml_set_2d_inplace(ctx, attn, o, attn->nb[1], seg.first * attn->nb[1]) : o;
        }

        cur = linear(ctx, attn, L.attn_out, L.attn_out_b, cpu);   // [E, T]

        // After the last attention only the sampled rows matter: drop the others before the MLP
        // and the LM head (the 50257-wide LM head dominates a prefill otherwise).
        if (il + 1 == hp.n_layer && !all_rows) {
            cur = ggml_get_rows(ctx, cur, out_ids);   // [E, n_out]
            x   = ggml_get_rows(ctx, x, out_ids);     // [E, n_out]
        }
        x = ggml_add(ctx, x, cur);                    // residual

        // x = x + mlp(ln_2(x)), mlp = c_proj(gelu(c_fc(.)))  (GELU: tanh approximation)
        cur = layer_norm(ctx, x, L.ffn_norm, L.ffn_norm_b, hp.norm_eps);
        cur = linear(ctx, cur, L.ffn_up, L.ffn_up_b, cpu);                         // [F, n]
        cur = cpu && gelu_lookup_available() ? gelu_lookup(ctx, cur) : ggml_gelu(ctx, cur);   // [F, n], the same bits
        cur = linear(ctx, cur, L.ffn_down, L.ffn_down_b, cpu);               // [E, n]
        x = ggml_add(ctx, x, cur);
    }

    // logits = lm_head(ln_f(x))
    x = layer_norm(ctx, x, m.output_norm, m.output_norm_b, hp.norm_eps);   // [E, n_out]
    if (!b.head_rows.empty() && (int64_t) b.head_rows.size() < n_out) {
        ggml_tensor * head_ids = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, (int64_t) b.head_rows.size());
        ggml_set_name(head_ids, "head_ids");
        ggml_set_input(head_ids);
        x = ggml_get_rows(ctx, x, head_ids);                               // [E, n_head]
    }
    ggml_tensor * logits = lm_head(ctx, m.output, x, cpu);            // [V, n_head]
    ggml_set_name(logits, "logits");
    ggml_set_output(logits);
    ggml_build_forward_expand(gf, logits);
    return gf;
}

} // namespace gpt2
