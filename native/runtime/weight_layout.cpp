// Where the decoder's weights lie and in which layout: as stored (the file mapping), copied into
// ggml's CPU_REPACK layout or into our interleaved q4_K (the CPU path), or copied to a device with
// the scheduler over it (offload). The graph reads them through a view of the model (view_).
#include "runtime/decoder.h"

#include "gpt/graph.h"
#include "io/gguf_reader.h"
#include "kernels/q4k_interleaved.h"
#include "util/error.h"
#include "util/log.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace gpt2 {

// A model that points at m's weights, for the decoder to swap some of them for copies (repacked,
// or on a device); it owns nothing.
static std::unique_ptr<model> weight_view(const model & m) {
    auto v           = std::make_unique<model>();
    v->hp            = m.hp;
    v->token_embd    = m.token_embd;
    v->position_embd = m.position_embd;
    v->output_norm   = m.output_norm;
    v->output_norm_b = m.output_norm_b;
    v->output        = m.output;
    v->tied_output   = m.tied_output;
    v->layers        = m.layers;
    return v;
}

void decoder::repack_weights() {
    // Some types multiply faster from an interleaved layout: q4_K from ours (q4k_interleaved.h,
    // one kernel for every row count), others from ggml's CPU backend's (its "extra" buffer type
    // CPU_REPACK: q4_0, iq4_nl... on AVX2), as llama.cpp does by default. The blocks' weights are
    // copied into such layouts and the graph reads the copies through a view of the model.
    if (std::getenv("GPT2_NODE_NO_REPACK")) return;
    auto v         = weight_view(*model_);
    n_interleaved_ = interleave_weights(*v);
    repack_for_ggml(*v);
    if (n_interleaved_ > 0 || !repacked_slots_.empty()) view_ = std::move(v);
}

void decoder::repack_for_ggml(model & v) {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!cpu) return;
    using extra_bufts_fn                 = ggml_backend_buffer_type_t * (*)(ggml_backend_dev_t);
    auto                       get_extra = (extra_bufts_fn) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu),
                                                                                              "ggml_backend_dev_get_extra_bufts");
    ggml_backend_buffer_type_t repack    = nullptr;
    for (ggml_backend_buffer_type_t * b = get_extra ? get_extra(cpu) : nullptr; b && *b; ++b) {
        if (std::strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) repack = *b;
    }
    if (!repack) return;

    // Which weights it takes: asked as llama.cpp asks, with a matmul whose weight sits in an
    // empty buffer of that type.
    const ggml_backend_buffer_ptr probe(ggml_backend_buft_alloc_buffer(repack, 0));
    if (!probe) return;
    ggml_backend_buffer_t  probe_buf = probe.get();
    std::vector<uint8_t>   meta(ggml_tensor_overhead() * 4);
    ggml_init_params       mp = { meta.size(), meta.data(), true };
    const ggml_context_ptr mowner(ggml_init(mp));
    ggml_context *         mctx  = mowner.get();
    auto                   takes = [&](const ggml_tensor * w) {
        ggml_tensor * a  = ggml_new_tensor_2d(mctx, w->type, w->ne[0], w->ne[1]);
        ggml_tensor * x  = ggml_new_tensor_2d(mctx, GGML_TYPE_F32, w->ne[0], 1);
        ggml_tensor * op = ggml_mul_mat(mctx, a, x);
        a->buffer        = probe_buf;
        const bool ok    = ggml_backend_dev_supports_op(cpu, op);
        ggml_reset(mctx);
        return ok;
    };

    std::vector<std::pair<ggml_tensor **, ggml_tensor *>> copies;   // slot, original
    for (layer & L : v.layers) {
        for (ggml_tensor ** t : { &L.attn_qkv, &L.attn_out, &L.ffn_up, &L.ffn_down }) {
            if ((*t)->data && (*t)->extra == nullptr && takes(*t)) copies.emplace_back(t, *t);   // extra: interleaved by us
        }
    }
    if (copies.empty()) return;
    ggml_init_params ip = { ggml_tensor_overhead() * copies.size(), nullptr, /*no_alloc =*/true };
    ggml_context_ptr ctx(ggml_init(ip));
    if (!ctx) return;
    for (auto & [slot, src] : copies) {
        ggml_tensor * t = ggml_dup_tensor(ctx.get(), src);
        ggml_set_name(t, src->name);
        *slot = t;
    }
    ggml_backend_buffer_ptr buf(ggml_backend_alloc_ctx_tensors_from_buft(ctx.get(), repack));
    if (!buf) {   // not fatal: the weights as they are work too
        for (auto & [slot, src] : copies) *slot = src;
        log_write(log_level::warn, "gpt2-node", "cannot allocate the repacked weights; multiplying them as stored\n");
        return;
    }
    ggml_backend_buffer_set_usage(buf.get(), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    // The originals are not read again (or, if init() drops the copies, read back from the
    // page cache): each gives its mapped pages back once copied, so RSS holds one of the two.
    for (auto & [slot, src] : copies) {
        ggml_backend_tensor_set(*slot, src->data, 0, ggml_nbytes(src));
        if (model_->file) model_->file->release(src->data, ggml_nbytes(src));
    }
    dev_ctx_        = std::move(ctx);
    dev_buf_        = std::move(buf);
    repacked_slots_ = std::move(copies);
}

uint32_t decoder::interleave_weights(model & v) {
    std::vector<ggml_tensor **> slots;
    size_t                      total   = 0;
    constexpr size_t            k_align = 64;
    auto                        take    = [&](ggml_tensor ** t) {
        if (*t && (*t)->data && q4k_interleave_supports(*t)) {
            slots.push_back(t);
            total += (q4k_interleaved_size(*t) + k_align - 1) / k_align * k_align;
        }
    };
    for (layer & L : v.layers) {
        for (ggml_tensor ** t : { &L.attn_qkv, &L.attn_out, &L.ffn_up, &L.ffn_down }) take(t);
    }
    // The LM head too. Tied to the token embedding, the embedding lookup reads the interleaved
    // copy as well (kernels/dispatch.h, token_rows), so the original's pages, released, are not read back.
    take(&v.output);
    if (slots.empty()) return 0;
    ggml_init_params        ip = { ggml_tensor_overhead() * slots.size(), nullptr, /*no_alloc =*/true };
    ggml_context_ptr        ctx(ggml_init(ip));
    ggml_backend_buffer_ptr buf(ctx ? ggml_backend_buft_alloc_buffer(ggml_backend_cpu_buffer_type(), total) : nullptr);
    if (!buf) {   // not fatal: the weights as stored work too
        log_write(log_level::warn, "gpt2-node", "cannot allocate the interleaved q4_K weights; multiplying them as stored\n");
        return 0;
    }
    ggml_backend_buffer_set_usage(buf.get(), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    char * at = static_cast<char *>(ggml_backend_buffer_get_base(buf.get()));
    for (ggml_tensor ** slot : slots) {
        const ggml_tensor * src = *slot;
        ggml_tensor *       t   = ggml_dup_tensor(ctx.get(), src);   // Q4_K [K, M], as ggml's repacked tensors keep theirs
        ggml_set_name(t, src->name);
        ggml_backend_tensor_alloc(buf.get(), t, at);   // (ggml's size of it, 576 of every 592 bytes, fits)
        q4k_interleave(src, t->data);
        q4k_mark_interleaved(t);
        if (model_->file) model_->file->release(src->data, ggml_nbytes(src));
        at += (q4k_interleaved_size(src) + k_align - 1) / k_align * k_align;
        *slot = t;
    }
    own_ctx_ = std::move(ctx);
    own_buf_ = std::move(buf);
    return (uint32_t) slots.size();
}

void decoder::drop_repacked() {
    for (auto & [slot, src] : repacked_slots_) *slot = src;
    repacked_slots_.clear();
    if (n_interleaved_ == 0) view_.reset();
    dev_buf_.reset();
    dev_ctx_.reset();
}

void decoder::offload(ggml_backend_buffer_type * buft) {
    const hparams & hp    = model_->hp;
    const uint32_t  n_off = params_.gpu_layers < 0 ? hp.n_layer : (uint32_t) params_.gpu_layers;
    const uint32_t  first = hp.n_layer - n_off;    // blocks [first, n_layer) go to the device
    const bool      head  = n_off == hp.n_layer;   // with all of them, the final norm and LM head too

    // A view of the model whose offloaded tensors are device copies. The token and position
    // embeddings stay in host memory: get_rows reads a handful of rows per step.
    view_ = weight_view(*model_);

    std::vector<std::pair<ggml_tensor **, const ggml_tensor *>> copies;
    for (uint32_t il = first; il < hp.n_layer; ++il) {
        layer & L = view_->layers[il];
        for (ggml_tensor ** t : { &L.attn_norm, &L.attn_norm_b, &L.attn_qkv, &L.attn_qkv_b, &L.attn_out, &L.attn_out_b, &L.ffn_norm,
                                  &L.ffn_norm_b, &L.ffn_up, &L.ffn_up_b, &L.ffn_down, &L.ffn_down_b }) {
            copies.emplace_back(t, *t);
        }
    }
    if (head) {
        for (ggml_tensor ** t : { &view_->output_norm, &view_->output_norm_b, &view_->output }) copies.emplace_back(t, *t);
    }
    ggml_init_params ip = { ggml_tensor_overhead() * (copies.size() + 1), nullptr, /*no_alloc =*/true };
    dev_ctx_.reset(ggml_init(ip));
    if (!dev_ctx_) throw error(codes::out_of_memory, "cannot allocate a ggml context");
    for (auto & [slot, src] : copies) {
        ggml_tensor * t = ggml_dup_tensor(dev_ctx_.get(), src);
        ggml_set_name(t, src == model_->token_embd ? "output.weight" : src->name);   // a tied head gets its own copy
        *slot = t;
    }
    if (!copies.empty()) {
        dev_buf_.reset(ggml_backend_alloc_ctx_tensors_from_buft(dev_ctx_.get(), buft));
        if (!dev_buf_) {
            size_t bytes = 0;
            for (auto & c : copies) bytes += ggml_nbytes(c.second);
            throw error(codes::out_of_memory,
                        "cannot allocate " + std::to_string(bytes >> 20) + " MiB for the weights in " + ggml_backend_buft_name(buft) +
                            " (fewer gpuLayers need less)");
        }
        ggml_backend_buffer_set_usage(dev_buf_.get(), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        for (auto & [slot, src] : copies) ggml_backend_tensor_set(*slot, src->data, 0, ggml_nbytes(src));
    }
    n_offloaded_ = gpu_ ? n_off : 0;

    // Offloaded layers keep their K and V on the device.
    std::vector<ggml_backend_buffer_type *> kv_buft(hp.n_layer, ggml_backend_get_default_buffer_type(backend_.get()));
    for (uint32_t il = first; il < hp.n_layer; ++il) kv_buft[il] = buft;
    kv_ = std::make_unique<kv_cache>(hp, params_.n_ctx, params_.n_seq, params_.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16, kv_buft);

    // The scheduler: the device first, the CPU last (ggml's rule); it assigns each op to the
    // backend holding its weights and copies activations across.
    std::vector<ggml_backend_t> backends;
    if (gpu_) backends.push_back(gpu_.get());
    backends.push_back(backend_.get());
    const size_t max_segments = std::min<size_t>((size_t) params_.n_seq + 1, params_.n_batch);
    sched_.reset(ggml_backend_sched_new(backends.data(), nullptr, (int) backends.size(), 2 * graph_max_nodes(*model_, max_segments) + 1024,
                                        /*parallel =*/false, /*op_offload =*/true));
    if (!sched_) throw error(codes::backend, "cannot create the backend scheduler");
    log_write(log_level::debug, "gpt2-node",
              "scheduler over " + std::to_string(backends.size()) + " backend(s); " + std::to_string(copies.size()) + " weight tensors (" +
                  std::to_string(dev_buf_ ? ggml_backend_buffer_get_size(dev_buf_.get()) >> 10 : 0) + " KiB) copied to " +
                  ggml_backend_buft_name(buft) + "\n");
}

}   // namespace gpt2
