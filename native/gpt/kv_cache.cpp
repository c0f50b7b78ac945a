#include "gpt/kv_cache.h"

#include "util/error.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>

namespace gpt2 {

kv_cache::kv_cache(const hparams & hp, uint32_t n_ctx_, uint32_t n_seq_, int type,
                   const std::vector<ggml_backend_buffer_type *> & layer_buft)
    : n_ctx(n_ctx_), n_seq(n_seq_) {
    try {
        init(hp, type, layer_buft);
    } catch (...) {
        release();
        throw;
    }
}

void kv_cache::init(const hparams & hp, int type, const std::vector<ggml_backend_buffer_type *> & layer_buft) {
    // one extra cell past the last slot: the decoder's padding row writes there (decoder.cpp)
    const int64_t n_cells = (int64_t) n_ctx * n_seq + 1;
    k.resize(hp.n_layer);
    v.resize(hp.n_layer);
    // One context and buffer per buffer type (a device holds the layers placed on it).
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        ggml_backend_buffer_type * buft = layer_buft[il];
        auto it = std::find_if(parts_.begin(), parts_.end(), [&](const part & p) { return p.buft == buft; });
        if (it == parts_.end()) {
            ggml_init_params params = { 2 * hp.n_layer * ggml_tensor_overhead(), nullptr, /*no_alloc =*/ true };
            ggml_context * ctx = ggml_init(params);
            if (!ctx) throw error("ERR_OUT_OF_MEMORY", "cannot allocate the KV cache context");
            it = parts_.insert(parts_.end(), part { buft, ctx, nullptr });
        }
        k[il] = ggml_new_tensor_2d(it->ctx, (ggml_type) type, hp.n_embd, n_cells);
        v[il] = ggml_new_tensor_2d(it->ctx, (ggml_type) type, hp.n_embd, n_cells);
        ggml_format_name(k[il], "cache_k_l%u", il);
        ggml_format_name(v[il], "cache_v_l%u", il);
    }
    for (part & p : parts_) {
        p.buf = ggml_backend_alloc_ctx_tensors_from_buft(p.ctx, p.buft);
        if (!p.buf) {
            throw error("ERR_OUT_OF_MEMORY", "cannot allocate the KV cache (" + std::to_string(n_seq) + " sequences × " +
                        std::to_string(n_ctx) + " positions) in " + ggml_backend_buft_name(p.buft));
        }
        // Zero it: unwritten cells are never read (masks and views stop at each slot's length),
        // but NaN garbage must not be able to leak through a 0 · NaN in a kernel.
        ggml_backend_buffer_clear(p.buf, 0);
    }
}

kv_cache::~kv_cache() { release(); }

void kv_cache::release() {
    for (part & p : parts_) {
        if (p.buf) ggml_backend_buffer_free(p.buf);
        if (p.ctx) ggml_free(p.ctx);
    }
    parts_.clear();
}

size_t kv_cache::bytes() const {
    size_t n = 0;
    for (const part & p : parts_) n += p.buf ? ggml_backend_buffer_get_size(p.buf) : 0;
    return n;
}

} // namespace gpt2
