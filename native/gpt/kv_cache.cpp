#include "gpt/kv_cache.h"

#include "util/error.h"
#include "util/pages.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "ggml-cpu.h"

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
        auto                       it   = std::find_if(parts_.begin(), parts_.end(), [&](const part & p) { return p.buft == buft; });
        if (it == parts_.end()) {
            ggml_init_params params = { 2 * hp.n_layer * ggml_tensor_overhead(), nullptr, /*no_alloc =*/true };
            ggml_context *   ctx    = ggml_init(params);
            if (!ctx) throw error(codes::out_of_memory, "cannot allocate the KV cache context");
            it = parts_.insert(parts_.end(), part{ buft, ctx, nullptr });
        }
        k[il] = ggml_new_tensor_2d(it->ctx, (ggml_type) type, hp.n_embd, n_cells);
        v[il] = ggml_new_tensor_2d(it->ctx, (ggml_type) type, hp.n_embd, n_cells);
        ggml_format_name(k[il], "cache_k_l%u", il);
        ggml_format_name(v[il], "cache_v_l%u", il);
    }
    for (part & p : parts_) {
        // In main memory the cells are zero-filled pages that the system maps in as sequences
        // first write them: a cache reserved for many slots or a long context costs only what
        // has been reached. Elsewhere (a device, or no such mapping here) a buffer cleared once.
        if (p.buft == ggml_backend_cpu_buffer_type()) place_in_zeroed_pages(p);
        if (!p.buf) {
            p.buf = ggml_backend_alloc_ctx_tensors_from_buft(p.ctx, p.buft);
            // Unwritten cells are never read (masks and views stop at each slot's length), but
            // NaN garbage must not be able to leak through a 0 · NaN in a kernel.
            if (p.buf) ggml_backend_buffer_clear(p.buf, 0);
        }
        if (!p.buf) {
            throw error(codes::out_of_memory,
                        "cannot allocate the KV cache (" + std::to_string(n_seq) + " sequences × " + std::to_string(n_ctx) +
                            " positions) in " + ggml_backend_buft_name(p.buft));
        }
    }
}

void kv_cache::place_in_zeroed_pages(part & p) {
    const size_t align = ggml_backend_buft_get_alignment(p.buft);
    size_t       bytes = align;
    for (ggml_tensor * t = ggml_get_first_tensor(p.ctx); t; t = ggml_get_next_tensor(p.ctx, t)) {
        bytes += GGML_PAD(ggml_backend_buft_get_alloc_size(p.buft, t), align);
    }
    pages::zeroed mem(bytes);
    if (!mem.data()) return;
    ggml_backend_buffer_t buf = ggml_backend_cpu_buffer_from_ptr(mem.data(), mem.size());
    if (!buf) return;
    ggml_tallocr talloc = ggml_tallocr_new(buf);
    for (ggml_tensor * t = ggml_get_first_tensor(p.ctx); t; t = ggml_get_next_tensor(p.ctx, t)) {
        if (ggml_tallocr_alloc(&talloc, t) != GGML_STATUS_SUCCESS) {
            ggml_backend_buffer_free(buf);
            return;
        }
    }
    p.buf   = buf;
    p.pages = std::move(mem);
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

}   // namespace gpt2
