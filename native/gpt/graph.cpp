// The GPT-2 forward pass (Radford et al. 2019): pre-LayerNorm blocks of causal multi-head
// self-attention and a GELU MLP, learned position embeddings, final LayerNorm, LM head.
//
// ggml dims are column-first: [n_embd, n_tokens] is n_tokens columns of n_embd values, and
// ggml_mul_mat(w, x) computes x · wᵀ, i.e. PyTorch's F.linear(x, w) with w of ggml shape [in, out].
// E = n_embd, H = n_head, hd = E / H, F = 4E, V = n_vocab, T = tokens in the batch.
#include "gpt/graph.h"

#include "gpt/kv_cache.h"
#include "gpt/model.h"
#include "kernels/dispatch.h"

#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace gpt2 {

size_t graph_max_nodes(const model & m, size_t n_segments) { return 64 + m.hp.n_layer * (32 + 16 * n_segments); }

namespace {

// The graph's inputs (graph.h lists them), filled by the decoder after allocation.
struct graph_inputs {
    ggml_tensor *              tokens   = nullptr;   // I32 [T]
    ggml_tensor *              pos      = nullptr;   // I32 [T]
    ggml_tensor *              kv_cells = nullptr;   // I64 [T]
    ggml_tensor *              out_ids  = nullptr;   // I32 [n_out], or none when every row is sampled
    ggml_tensor *              dec_rows = nullptr;   // I32 [3, n_dec], or none (decode_attention's rows)
    std::vector<ggml_tensor *> masks;                // F16 [n_kv, n] per segment; none for one token
};

ggml_tensor * new_input(ggml_context * ctx, ggml_tensor * t, const std::string & name) {
    ggml_set_name(t, name.c_str());
    ggml_set_input(t);
    return t;
}

graph_inputs new_inputs(ggml_context * ctx, const batch & b, const cpu_op_state * cpu) {
    const int64_t T     = (int64_t) b.tokens.size();
    const int64_t n_out = (int64_t) b.out_rows.size();
    graph_inputs  in;
    in.tokens   = new_input(ctx, ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T), "tokens");
    in.pos      = new_input(ctx, ggml_new_tensor_1d(ctx, GGML_TYPE_I32, T), "pos");
    in.kv_cells = new_input(ctx, ggml_new_tensor_1d(ctx, GGML_TYPE_I64, T), "kv_cells");
    if (n_out != T) in.out_ids = new_input(ctx, ggml_new_tensor_1d(ctx, GGML_TYPE_I32, n_out), "out_ids");
    const int64_t n_dec = std::count_if(b.segments.begin(), b.segments.end(), [](const batch_segment & s) { return s.n_tokens == 1; });
    if (own_decode_attention(cpu) && n_dec > 0) in.dec_rows = new_input(ctx, ggml_new_tensor_2d(ctx, GGML_TYPE_I32, 3, n_dec), "dec_rows");
    // Causal masks, one per multi-token segment: token i of the segment sees cache cells 0..n_past+i.
    in.masks.assign(b.segments.size(), nullptr);
    for (size_t s = 0; s < b.segments.size(); ++s) {
        const batch_segment & seg = b.segments[s];
        if (seg.n_tokens == 1) continue;   // a single token sees every cell: no mask
        in.masks[s] = new_input(ctx, ggml_new_tensor_2d(ctx, GGML_TYPE_F16, seg.n_past + seg.n_tokens, seg.n_tokens),
                                "kq_mask." + std::to_string(s));
    }
    return in;
}

// LayerNorm over the embedding dim: (x - mean) / sqrt(var + eps) * g + b
ggml_tensor * layer_norm(ggml_context * ctx, ggml_tensor * x, ggml_tensor * g, ggml_tensor * b, float eps) {
    x = ggml_norm(ctx, x, eps);   // [E, n]
    x = ggml_mul(ctx, x, g);      // [E, n]
    return ggml_add(ctx, x, b);   // [E, n]
}

// F.linear(x, w, b)
ggml_tensor * linear(ggml_context * ctx, ggml_tensor * x, ggml_tensor * w, ggml_tensor * b, cpu_op_state * cpu) {
    return ggml_add(ctx, block_matmul(ctx, w, x, cpu), b);   // [n_out, n]
}

// softmax(q·kᵀ/√hd + mask)·v for layer il, per head, each sequence over its own cache region only:
// stores the batch's new keys and values (from qkv [3E, T]) in the cache first. Returns [E, T].
ggml_tensor * self_attention(ggml_context * ctx, ggml_cgraph * gf, const hparams & hp, const kv_cache & kv, uint32_t il, ggml_tensor * qkv,
                             const batch & b, const graph_inputs & in, cpu_op_state * cpu) {
    const int64_t E   = hp.n_embd;
    const int64_t H   = hp.n_head;
    const int64_t hd  = hp.n_embd_head();
    const int64_t T   = (int64_t) b.tokens.size();
    const size_t  esz = ggml_element_size(qkv);
    ggml_tensor * kc  = kv.k[il];
    ggml_tensor * vc  = kv.v[il];

    // Each row's key and value go to its cell (its slot's cell n_past + i): two nodes for all
    // segments. The attention nodes below come later in the graph, and nodes run in order, so
    // they see the stores.
    ggml_build_forward_expand(
        gf, ggml_set_rows(ctx, kc, ggml_view_2d(ctx, qkv, E, T, qkv->nb[1], E * esz), in.kv_cells));   // [E, T] into [E, cells]
    ggml_build_forward_expand(
        gf, ggml_set_rows(ctx, vc, ggml_view_2d(ctx, qkv, E, T, qkv->nb[1], 2 * E * esz), in.kv_cells));   // [E, T] into [E, cells]

    // All decoding rows in one node (our CPU op), prompt chunks one flash-attention node each.
    ggml_tensor * attn = in.dec_rows ? decode_attention(ctx, qkv, kc, vc, in.dec_rows, (int) H, cpu->attention) : nullptr;   // [E, T]
    if (!attn && b.segments.size() > 1) attn = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, E, T);
    for (size_t s = 0; s < b.segments.size(); ++s) {
        const batch_segment & seg = b.segments[s];
        if (in.dec_rows && seg.n_tokens == 1) continue;
        const int64_t n     = seg.n_tokens;
        const int64_t n_kv  = seg.n_past + seg.n_tokens;
        const size_t  off   = seg.first * qkv->nb[1];
        const size_t  cell0 = (size_t) seg.slot * kv.n_ctx;

        ggml_tensor * q = ggml_view_3d(ctx, qkv, hd, H, n, hd * esz, qkv->nb[1], off);   // [hd, H, n]
        // the slot's first n_kv cells, per head
        ggml_tensor * k = ggml_view_3d(ctx, kc, hd, n_kv, H, kc->nb[1], hd * ggml_element_size(kc), cell0 * kc->nb[1]);   // [hd, n_kv, H]
        ggml_tensor * v = ggml_view_3d(ctx, vc, hd, n_kv, H, vc->nb[1], hd * ggml_element_size(vc), cell0 * vc->nb[1]);   // [hd, n_kv, H]

        ggml_tensor * o = ggml_flash_attn_ext(ctx, ggml_permute(ctx, q, 0, 2, 1, 3) /* [hd, n, H] */, k, v, in.masks[s],
                                              1.0f / std::sqrt((float) hd), 0.0f, 0.0f);   // [hd, H, n]
        ggml_flash_attn_ext_set_prec(o, GGML_PREC_F32);
        o = ggml_reshape_2d(ctx, o, E, n);   // [E, n]

        attn = attn ? ggml_set_2d_inplace(ctx, attn, o, attn->nb[1], seg.first * attn->nb[1]) : o;
    }
    return attn;   // [E, T]
}

}   // namespace

ggml_cgraph * graph_build(ggml_context * ctx, const model & m, const kv_cache & kv, const batch & b, cpu_op_state * cpu) {
    const hparams & hp       = m.hp;
    const float     eps      = hp.norm_eps;
    const bool      all_rows = b.out_rows.size() == b.tokens.size();
    if (cpu) note_kernel_path(cpu);

    ggml_cgraph *      gf = ggml_new_graph_custom(ctx, graph_max_nodes(m, b.segments.size()), false);
    const graph_inputs in = new_inputs(ctx, b, cpu);

    // x = wte[tokens] + wpe[pos]
    ggml_tensor * wte = token_rows(ctx, m.token_embd, m.tied_output ? m.output : nullptr, in.tokens);   // [E, T]
    ggml_tensor * x   = ggml_add(ctx, wte, ggml_get_rows(ctx, m.position_embd, in.pos));                // [E, T]

    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const layer & L = m.layers[il];

        // x = x + c_proj(attn(c_attn(ln_1(x))))
        ggml_tensor * cur = layer_norm(ctx, x, L.attn_norm, L.attn_norm_b, eps);    // [E, T]
        cur               = linear(ctx, cur, L.attn_qkv, L.attn_qkv_b, cpu);        // [3E, T]: q | k | v
        cur               = self_attention(ctx, gf, hp, kv, il, cur, b, in, cpu);   // [E, T]
        cur               = linear(ctx, cur, L.attn_out, L.attn_out_b, cpu);        // [E, T]
        // After the last attention only the sampled rows matter: drop the others before the MLP
        // and the LM head (the V-wide LM head dominates a prefill otherwise).
        if (il + 1 == hp.n_layer && !all_rows) {
            cur = ggml_get_rows(ctx, cur, in.out_ids);   // [E, n_out]
            x   = ggml_get_rows(ctx, x, in.out_ids);     // [E, n_out]
        }
        x = ggml_add(ctx, x, cur);   // [E, n]

        // x = x + c_proj(gelu(c_fc(ln_2(x))))   (GELU: the tanh approximation)
        cur = layer_norm(ctx, x, L.ffn_norm, L.ffn_norm_b, eps);   // [E, n]
        cur = linear(ctx, cur, L.ffn_up, L.ffn_up_b, cpu);         // [F, n]
        cur = gelu(ctx, cur, cpu);                                 // [F, n]
        cur = linear(ctx, cur, L.ffn_down, L.ffn_down_b, cpu);     // [E, n]
        x   = ggml_add(ctx, x, cur);                               // [E, n]
    }

    // logits = lm_head(ln_f(x))
    x = layer_norm(ctx, x, m.output_norm, m.output_norm_b, eps);   // [E, n_out]
    if (!b.head_rows.empty() && b.head_rows.size() < b.out_rows.size()) {
        ggml_tensor * head_ids = new_input(ctx, ggml_new_tensor_1d(ctx, GGML_TYPE_I32, (int64_t) b.head_rows.size()), "head_ids");
        x                      = ggml_get_rows(ctx, x, head_ids);   // [E, n_head]
    }
    ggml_tensor * logits = lm_head(ctx, m.output, x, cpu);   // [V, n_head]
    ggml_set_name(logits, "logits");
    ggml_set_output(logits);
    ggml_build_forward_expand(gf, logits);
    return gf;
}

}   // namespace gpt2
