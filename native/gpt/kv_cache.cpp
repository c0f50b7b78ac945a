#include "gpt/kv_cache.h"

#include "util/error.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"

namespace gpt2 {

kv_cache::kv_cache(const hparams & hp, uint32_t n_ctx_, uint32_t n_seq_, int type, ggml_backend_buffer_type * buft)
    : n_ctx(n_ctx_), n_seq(n_seq_) {
    ggml_init_params params = { 2 * hp.n_layer * ggml_tensor_overhead(), nullptr, /*no_alloc =*/ true };
    ctx_ = ggml_init(params);
    if (!ctx_) throw error("ERR_OUT_OF_MEMORY", "cannot allocate the KV cache context");
    // one extra cell past the last slot: the decoder's padding row writes there (decoder.cpp)
    const int64_t n_cells = (int64_t) n_ctx * n_seq + 1;
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        ggml_tensor * kt = ggml_new_tensor_2d(ctx_, (ggml_type) type, hp.n_embd, n_cells);
        ggml_tensor * vt = ggml_new_tensor_2d(ctx_, (ggml_type) type, hp.n_embd, n_cells);
        ggml_format_name(kt, "cache_k_l%u", il);
        ggml_format_name(vt, "cache_v_l%u", il);
        k.push_back(kt);
        v.push_back(vt);
    }
    buf_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_, buft);
    if (!buf_) {
        ggml_free(ctx_);
        throw error("ERR_OUT_OF_MEMORY", "cannot allocate the KV cache (" + std::to_string(n_seq) + " sequences × " +
                    std::to_string(n_ctx) + " positions)");
    }
    // Zero it: unwritten cells are never read (masks and views stop at each slot's length), but
    // NaN garbage must not be able to leak through a 0 · NaN in a kernel.
    ggml_backend_buffer_clear(buf_, 0);
}

kv_cache::~kv_cache() {
    if (buf_) ggml_backend_buffer_free(buf_);
    if (ctx_) ggml_free(ctx_);
}

size_t kv_cache::bytes() const { return buf_ ? ggml_backend_buffer_get_size(buf_) : 0; }

} // namespace gpt2
