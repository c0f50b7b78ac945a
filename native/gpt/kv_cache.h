// The KV cache: for every layer one K and one V tensor holding `n_seq` independent regions of
// `n_ctx` positions each. A sequence owns one region (its slot), so attention reads only its own
// keys and values: cost grows with the sequence's own length, and its numbers never depend on
// what other slots hold.
#pragma once

#include "gpt/hparams.h"
#include "util/pages.h"

#include <cstddef>
#include <cstdint>
#include <vector>

struct ggml_context;
struct ggml_tensor;
struct ggml_backend_buffer;
struct ggml_backend_buffer_type;

namespace gpt2 {

struct kv_cache {
    // layer_buft[il]: where layer il's K and V live (the device that computes that layer).
    kv_cache(const hparams & hp, uint32_t n_ctx, uint32_t n_seq, int type /* ggml_type */,
             const std::vector<ggml_backend_buffer_type *> & layer_buft);
    ~kv_cache();
    kv_cache(const kv_cache &)             = delete;
    kv_cache & operator=(const kv_cache &) = delete;

    uint32_t                   n_ctx = 0;   // positions per slot
    uint32_t                   n_seq = 0;   // slots
    std::vector<ggml_tensor *> k;           // per layer [n_embd, n_ctx·n_seq + 1]
    std::vector<ggml_tensor *> v;           // per layer [n_embd, n_ctx·n_seq + 1] (not transposed: flash attention layout)
    // The last cell belongs to no slot: it is the scratch cell of the decoder's padding row.
    uint32_t scratch_slot() const { return n_seq; }   // as a segment slot, with n_past 0 and 1 token
    size_t   bytes() const;

private:
    void init(const hparams & hp, int type, const std::vector<ggml_backend_buffer_type *> & layer_buft);
    void release();

    struct part {
        ggml_backend_buffer_type * buft;
        ggml_context *             ctx;
        ggml_backend_buffer *      buf;
        pages::zeroed              pages;   // the memory under buf when it is main memory
    };
    void              place_in_zeroed_pages(part & p);
    std::vector<part> parts_;
};

}   // namespace gpt2
