#include "gpt/decoder.h"

#include "gpt/devices.h"
#include "gpt/graph.h"
#include "gpt/q4k_interleaved.h"
#include "io/gguf_reader.h"
#include "util/error.h"
#include "util/log.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace gpt2 {

// Views (offset, width) for decoder::row_count_invariant(), the probed row being column 4: any
// row count, the probed row first or among others; 72 rows take ggml's kernel for many rows where
// decoding steps take ours (graph.cpp, block_matmul).
static const std::vector<std::pair<int, int>> k_any_rows = { { 4, 1 }, { 4, 2 }, { 3, 2 }, { 4, 7 }, { 1, 7 }, { 0, 16 }, { 0, 72 } };

// A model that points at m's weights, for the decoder to swap some of them for copies (repacked,
// or on a device); it owns nothing.
static std::unique_ptr<model> weight_view(const model & m) {
    auto v = std::make_unique<model>();
    v->hp = m.hp;
    v->token_embd = m.token_embd;
    v->position_embd = m.position_embd;
    v->output_norm = m.output_norm;
    v->output_norm_b = m.output_norm_b;
    v->output = m.output;
    v->tied_output = m.tied_output;
    v->layers = m.layers;
    return v;
}

uint32_t default_thread_count() {
    // Hardware threads count SMT siblings, which do not help matmuls; ggml's spinning workers on
    // oversubscribed cores hurt badly (the JS thread needs a core too). Take half, within [1, 4].
    unsigned hw = std::thread::hardware_concurrency();
    if (hw == 0) hw = 2;
    return std::clamp<uint32_t>(hw / 2, 1, 4);
}

static bool abort_cb(void * data) {
    auto * flag = static_cast<const std::atomic<bool> *>(data);
    return flag && flag->load(std::memory_order_relaxed);
}

decoder::decoder(std::shared_ptr<const model> m, const decoder_params & p) : model_(std::move(m)), params_(p) {
    try {
        init();
    } catch (...) {
        release();
        throw;
    }
}

void decoder::init() {
    const hparams & hp = model_->hp;
    if (params_.n_ctx == 0) params_.n_ctx = hp.n_ctx;
    if (params_.n_ctx > hp.n_ctx) {
        throw range_error("contextSize " + std::to_string(params_.n_ctx) + " exceeds the model's " +
                          std::to_string(hp.n_ctx) + " learned positions");
    }
    if (params_.n_seq == 0) throw range_error("the number of sequences must be at least 1");
    if (params_.n_batch == 0) params_.n_batch = 512;
    if (params_.n_threads == 0) params_.n_threads = default_thread_count();
    if (const char * e = std::getenv("GPT2_NODE_SCHED_ON_CPU"); e && std::strcmp(e, "1") == 0) params_.sched_on_cpu = true;
    if (params_.gpu_layers > (int32_t) hp.n_layer) {
        throw range_error("Expected integer between 0 and " + std::to_string(hp.n_layer) + " for gpuLayers but received " +
                          std::to_string(params_.gpu_layers));
    }

    backend_ = ggml_backend_cpu_init();
    if (!backend_) throw error("ERR_BACKEND", "cannot initialize the CPU backend");

    ggml_threadpool_params tpp = ggml_threadpool_params_default((int) params_.n_threads);
    threadpool_ = ggml_threadpool_new(&tpp);
    if (!threadpool_) throw error("ERR_BACKEND", "cannot create a thread pool of " + std::to_string(params_.n_threads) + " threads");
    ggml_backend_cpu_set_threadpool(backend_, threadpool_);
    ggml_backend_cpu_set_n_threads(backend_, (int) params_.n_threads);
    ggml_backend_cpu_set_abort_callback(backend_, abort_cb, nullptr);

    // The device: a GPU when asked for (or found, with 'auto'), else the CPU.
    const device_choice choice = device_select(params_.device);
    if (choice.dev) {
        gpu_ = ggml_backend_dev_init(choice.dev, nullptr);
        if (!gpu_) {
            if (choice.requested) throw error("ERR_NO_DEVICE", "cannot initialize device " + choice.id);
            log_write(log_level::warn, "gpt2-node", "cannot initialize " + choice.id + " (" +
                      ggml_backend_dev_description(choice.dev) + "); running on the CPU\n");
        }
    }
    if (gpu_ && params_.gpu_layers != 0) {
        device_id_ = choice.id;
        offload(ggml_backend_dev_buffer_type(choice.dev));
        log_write(log_level::info, "gpt2-node", "running " + std::to_string(n_offloaded_) + " of " + std::to_string(hp.n_layer) +
                  " layers on " + choice.id + " (" + ggml_backend_dev_description(choice.dev) + ")\n");
    } else {
        if (gpu_) { ggml_backend_free(gpu_); gpu_ = nullptr; }
        if (params_.sched_on_cpu) offload(ggml_backend_get_default_buffer_type(backend_));
    }
    if (!sched_) {
        kv_ = std::make_unique<kv_cache>(hp, params_.n_ctx, params_.n_seq, params_.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16,
                                         std::vector<ggml_backend_buffer_type *>(hp.n_layer, ggml_backend_get_default_buffer_type(backend_)));
        galloc_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
    }

    // Which matmuls give a row the same numbers alone as among others (see decode()). Probed on
    // the CPU path only: the scheduler path splits the graph, and a GPU picks kernels by size.
    // Repacked weights are probed as repacked; ggml's interleaved kernels take a gemm for groups
    // of 4 rows and a gemv for the rest, which may round differently (its q4_K's do: ours takes
    // q4_K first): with batch invariance asked for, ggml's repacked copies are then dropped and
    // those weights probed as stored. (A gemm alone is invariant, so padding every batch to a
    // multiple of 4 rows would do, but a lone stream then computes 4 rows per token: measured
    // half the decoding speed.)
    if (!sched_) repack_weights();
    const bool probe = params_.batch_invariant && !sched_;
    bool blocks_invariant = probe && blocks_row_count_invariant(k_any_rows);
    if (probe && !blocks_invariant && !repacked_slots_.empty()) {
        log_write(log_level::debug, "gpt2-node", "repacked weights are not row-count invariant; multiplying them as stored\n");
        drop_repacked();
        blocks_invariant = blocks_row_count_invariant(k_any_rows);
    }
    const bool quantized_blocks = std::any_of(graph_model().layers.begin(), graph_model().layers.end(), [](const layer & L) {
        return ggml_is_quantized(L.attn_qkv->type) || ggml_is_quantized(L.attn_out->type) ||
               ggml_is_quantized(L.ffn_up->type) || ggml_is_quantized(L.ffn_down->type);
    });
    if (probe && !blocks_invariant && cpu_ops() && quantized_blocks) {
        // Our quantized kernel and ggml's for many rows disagree (not seen: ours follows ggml's
        // arithmetic, but ggml's may differ on another CPU): ggml's alone then.
        cpu_ops_.own_quant_blocks = false;
        blocks_invariant = blocks_row_count_invariant(k_any_rows);
        if (!blocks_invariant) cpu_ops_.own_quant_blocks = true;
    }
    if (probe && !blocks_invariant && cpu_ops()) {
        // ggml multiplies one row with another kernel than several (f16, f32): try ours for the
        // lone row, which sums as llamafile's tinyBLAS does, in place of a padding row.
        cpu_ops_.own_lone_rows = true;
        blocks_invariant = blocks_row_count_invariant(k_any_rows);
        if (!blocks_invariant) cpu_ops_.own_lone_rows = false;
    }
    head_invariant_ = probe && row_count_invariant(graph_model().output, { { 4, 1 }, { 4, 2 }, { 1, 7 } }, /*head =*/ true);
    pad_ = params_.batch_invariant && !(blocks_invariant && head_invariant_);
    log_write(log_level::debug, "gpt2-node", std::string("row-count invariant: LM head ") + (head_invariant_ ? "yes" : "no") +
              ", blocks " + (blocks_invariant ? "yes" : "no") + (cpu_ops_.own_lone_rows ? " (a lone row through our kernel)" : "") +
              (cpu_ops_.own_quant_blocks ? "" : " (quantized blocks through ggml's kernels only)") + "\n");
    if (!repacked_slots_.empty()) {
        log_write(log_level::debug, "gpt2-node", std::to_string(repacked_slots_.size()) + " weight tensors (" +
                  std::to_string(ggml_backend_buffer_get_size(dev_buf_) >> 10) + " KiB) repacked for CPU_REPACK\n");
    }
    if (n_interleaved_ > 0) {
        log_write(log_level::debug, "gpt2-node", std::to_string(n_interleaved_) + " q4_K weight tensors (" +
                  std::to_string(ggml_backend_buffer_get_size(own_buf_) >> 10) + " KiB) interleaved four rows at a time\n");
    }

    // Reserve the compute buffer once for a full batch at the end of the context with logits for
    // two rows (generation, scoring a chunk's last rows). A batch wanting logits for many rows
    // (evaluate with allPositions: 512 rows of 50257 floats are 100 MB) grows it when it comes,
    // instead of every process paying for it up front.
    batch worst;
    const uint32_t n = std::min(params_.n_batch, params_.n_ctx);
    std::vector<uint32_t> ids(n, 0);
    worst.add_segment(0, params_.n_ctx - n, ids.data(), n, batch::logits::none);
    worst.out_rows = { (int32_t) n - 2 >= 0 ? (int32_t) n - 2 : 0, (int32_t) n - 1 };
    if (worst.out_rows[0] == worst.out_rows[1]) worst.out_rows.pop_back();
    meta_.resize(ggml_tensor_overhead() * graph_max_nodes(*model_, 1) * 2 + ggml_graph_overhead_custom(graph_max_nodes(*model_, 1), false));
    ggml_init_params ip = { meta_.size(), meta_.data(), true };
    ggml_context * ctx = ggml_init(ip);
    ggml_cgraph * gf = graph_build(ctx, graph_model(), *kv_, worst, cpu_ops());
    const bool ok = sched_ ? ggml_backend_sched_reserve(sched_, gf) : ggml_gallocr_reserve(galloc_, gf);
    ggml_free(ctx);
    if (!ok) throw error("ERR_OUT_OF_MEMORY", "cannot allocate the compute buffer");
}

bool decoder::row_count_invariant(ggml_tensor * w, const std::vector<std::pair<int, int>> & views, bool head) {
    // w times views [offset, offset + width) of a matrix of random columns, each holding column
    // k_probe_column: that column's products must be equal to the bit in every view when the
    // kernel computes a row the same way whatever the number of rows and its place among them.
    // ggml's generic path does; llamafile's tinyBLAS (taken from two rows up) does too for some
    // types (q8_0: the same per-block sums in the same order as ggml's dot product) and not for
    // others (f16).
    constexpr int k_probe_column = 4;
    const int64_t K = w->ne[0], N = w->ne[1];
    int n_cols = 0;
    for (auto [off, width] : views) n_cols = std::max(n_cols, off + width);
    std::vector<uint8_t> meta(ggml_tensor_overhead() * 64 + ggml_graph_overhead());
    ggml_init_params ip = { meta.size(), meta.data(), true };
    ggml_context * ctx = ggml_init(ip);
    struct ctx_guard { ggml_context * c; ~ctx_guard() { ggml_free(c); } } guard { ctx };
    ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, n_cols);
    ggml_set_input(x);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    std::vector<std::pair<ggml_tensor *, int>> out;   // product, and the probe column's place in it
    for (auto [off, width] : views) {
        ggml_tensor * xv = ggml_view_2d(ctx, x, K, width, x->nb[1], (size_t) off * x->nb[1]);
        ggml_tensor * y = head ? lm_head(ctx, w, xv, cpu_ops()) : block_matmul(ctx, w, xv, cpu_ops());   // [N, width]
        ggml_set_output(y);
        ggml_build_forward_expand(gf, y);
        out.emplace_back(y, k_probe_column - off);
    }
    ggml_gallocr_t ga = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_));
    struct ga_guard { ggml_gallocr_t g; ~ga_guard() { ggml_gallocr_free(g); } } gguard { ga };
    if (!ggml_gallocr_alloc_graph(ga, gf)) return false;
    std::vector<float> xs((size_t) K * n_cols);
    uint32_t r = 12345;
    for (float & v : xs) { r = r * 1664525u + 1013904223u; v = (float) ((r >> 8) & 0xFFFF) / 65536.0f - 0.5f; }
    ggml_backend_tensor_set(x, xs.data(), 0, xs.size() * sizeof(float));
    if (ggml_backend_graph_compute(backend_, gf) != GGML_STATUS_SUCCESS) return false;
    std::vector<float> first((size_t) N), other((size_t) N);
    for (size_t i = 0; i < out.size(); ++i) {
        ggml_backend_tensor_get(out[i].first, (i == 0 ? first : other).data(), (size_t) out[i].second * N * sizeof(float), N * sizeof(float));
        if (i > 0 && std::memcmp(first.data(), other.data(), N * sizeof(float)) != 0) return false;
    }
    return true;
}

bool decoder::blocks_row_count_invariant(const std::vector<std::pair<int, int>> & views) {
    // every distinct kind of block weight (type and shape: a mixed quantization varies by layer)
    std::vector<ggml_tensor *> kinds;
    for (const layer & L : graph_model().layers) {
        for (ggml_tensor * w : { L.attn_qkv, L.attn_out, L.ffn_up, L.ffn_down }) {
            const bool seen = std::any_of(kinds.begin(), kinds.end(), [w](const ggml_tensor * k) {
                return k->type == w->type && k->ne[0] == w->ne[0] && k->ne[1] == w->ne[1] && k->buffer == w->buffer;
            });
            if (!seen) kinds.push_back(w);
        }
    }
    return std::all_of(kinds.begin(), kinds.end(), [&](ggml_tensor * w) { return row_count_invariant(w, views, false); });
}

void decoder::repack_weights() {
    // Some types multiply faster from an interleaved layout: q4_K from ours (q4k_interleaved.h,
    // one kernel for every row count), others from ggml's CPU backend's (its "extra" buffer type
    // CPU_REPACK: q4_0, iq4_nl... on AVX2), as llama.cpp does by default. The blocks' weights are
    // copied into such layouts and the graph reads the copies through a view of the model.
    if (std::getenv("GPT2_NODE_NO_REPACK")) return;
    auto v = weight_view(*model_);
    n_interleaved_ = interleave_weights(*v);
    repack_for_ggml(*v);
    if (n_interleaved_ > 0 || !repacked_slots_.empty()) view_ = std::move(v);
}

void decoder::repack_for_ggml(model & v) {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!cpu) return;
    using extra_bufts_fn = ggml_backend_buffer_type_t * (*)(ggml_backend_dev_t);
    auto get_extra = (extra_bufts_fn) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
    ggml_backend_buffer_type_t repack = nullptr;
    for (ggml_backend_buffer_type_t * b = get_extra ? get_extra(cpu) : nullptr; b && *b; ++b) {
        if (std::strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) repack = *b;
    }
    if (!repack) return;

    // Which weights it takes: asked as llama.cpp asks, with a matmul whose weight sits in an
    // empty buffer of that type.
    ggml_backend_buffer_t probe_buf = ggml_backend_buft_alloc_buffer(repack, 0);
    if (!probe_buf) return;
    struct buf_guard { ggml_backend_buffer_t b; ~buf_guard() { ggml_backend_buffer_free(b); } } pguard { probe_buf };
    std::vector<uint8_t> meta(ggml_tensor_overhead() * 4);
    ggml_init_params mp = { meta.size(), meta.data(), true };
    ggml_context * mctx = ggml_init(mp);
    struct ctx_guard { ggml_context * c; ~ctx_guard() { ggml_free(c); } } mguard { mctx };
    auto takes = [&](const ggml_tensor * w) {
        ggml_tensor * a = ggml_new_tensor_2d(mctx, w->type, w->ne[0], w->ne[1]);
        ggml_tensor * x = ggml_new_tensor_2d(mctx, GGML_TYPE_F32, w->ne[0], 1);
        ggml_tensor * op = ggml_mul_mat(mctx, a, x);
        a->buffer = probe_buf;
        const bool ok = ggml_backend_dev_supports_op(cpu, op);
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
    ggml_init_params ip = { ggml_tensor_overhead() * copies.size(), nullptr, /*no_alloc =*/ true };
    ggml_context * ctx = ggml_init(ip);
    if (!ctx) return;
    for (auto & [slot, src] : copies) {
        ggml_tensor * t = ggml_dup_tensor(ctx, src);
        ggml_set_name(t, src->name);
        *slot = t;
    }
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, repack);
    if (!buf) {   // not fatal: the weights as they are work too
        for (auto & [slot, src] : copies) *slot = src;
        ggml_free(ctx);
        log_write(log_level::warn, "gpt2-node", "cannot allocate the repacked weights; multiplying them as stored\n");
        return;
    }
    ggml_backend_buffer_set_usage(buf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    // The originals are not read again (or, if init() drops the copies, read back from the
    // page cache): each gives its mapped pages back once copied, so RSS holds one of the two.
    for (auto & [slot, src] : copies) {
        ggml_backend_tensor_set(*slot, src->data, 0, ggml_nbytes(src));
        if (model_->file) model_->file->release(src->data, ggml_nbytes(src));
    }
    dev_ctx_ = ctx;
    dev_buf_ = buf;
    repacked_slots_ = std::move(copies);
}

uint32_t decoder::interleave_weights(model & v) {
    std::vector<ggml_tensor **> slots;
    size_t total = 0;
    constexpr size_t k_align = 64;
    auto take = [&](ggml_tensor ** t) {
        if (*t && (*t)->data && q4k_interleave_supports(*t)) {
            slots.push_back(t);
            total += (q4k_interleaved_size(*t) + k_align - 1) / k_align * k_align;
        }
    };
    for (layer & L : v.layers) {
        for (ggml_tensor ** t : { &L.attn_qkv, &L.attn_out, &L.ffn_up, &L.ffn_down }) take(t);
    }
    // The LM head too. Tied to the token embedding, the embedding lookup reads the interleaved
    // copy as well (graph.cpp), so the original's pages, released, are not read back.
    take(&v.output);
    if (slots.empty()) return 0;
    ggml_init_params ip = { ggml_tensor_overhead() * slots.size(), nullptr, /*no_alloc =*/ true };
    ggml_context * ctx = ggml_init(ip);
    ggml_backend_buffer_t buf = ctx ? ggml_backend_buft_alloc_buffer(ggml_backend_cpu_buffer_type(), total) : nullptr;
    if (!buf) {   // not fatal: the weights as stored work too
        if (ctx) ggml_free(ctx);
        log_write(log_level::warn, "gpt2-node", "cannot allocate the interleaved q4_K weights; multiplying them as stored\n");
        return 0;
    }
    ggml_backend_buffer_set_usage(buf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    char * at = static_cast<char *>(ggml_backend_buffer_get_base(buf));
    for (ggml_tensor ** slot : slots) {
        const ggml_tensor * src = *slot;
        ggml_tensor * t = ggml_dup_tensor(ctx, src);   // Q4_K [K, M], as ggml's repacked tensors keep theirs
        ggml_set_name(t, src->name);
        ggml_backend_tensor_alloc(buf, t, at);         // (ggml's size of it, 576 of every 592 bytes, fits)
        q4k_interleave(src, t->data);
        q4k_mark_interleaved(t);
        if (model_->file) model_->file->release(src->data, ggml_nbytes(src));
        at += (q4k_interleaved_size(src) + k_align - 1) / k_align * k_align;
        *slot = t;
    }
    own_ctx_ = ctx;
    own_buf_ = buf;
    return (uint32_t) slots.size();
}

void decoder::drop_repacked() {
    for (auto & [slot, src] : repacked_slots_) *slot = src;
    repacked_slots_.clear();
    if (n_interleaved_ == 0) view_.reset();
    ggml_backend_buffer_free(dev_buf_);
    dev_buf_ = nullptr;
    ggml_free(dev_ctx_);
    dev_ctx_ = nullptr;
}

void decoder::offload(ggml_backend_buffer_type * buft) {
    const hparams & hp = model_->hp;
    const uint32_t n_off = params_.gpu_layers < 0 ? hp.n_layer : (uint32_t) params_.gpu_layers;
    const uint32_t first = hp.n_layer - n_off;   // blocks [first, n_layer) go to the device
    const bool head = n_off == hp.n_layer;       // with all of them, the final norm and LM head too

    // A view of the model whose offloaded tensors are device copies. The token and position
    // embeddings stay in host memory: get_rows reads a handful of rows per step.
    view_ = weight_view(*model_);

    std::vector<std::pair<ggml_tensor **, const ggml_tensor *>> copies;
    for (uint32_t il = first; il < hp.n_layer; ++il) {
        layer & L = view_->layers[il];
        for (ggml_tensor ** t : { &L.attn_norm, &L.attn_norm_b, &L.attn_qkv, &L.attn_qkv_b, &L.attn_out, &L.attn_out_b,
                                  &L.ffn_norm, &L.ffn_norm_b, &L.ffn_up, &L.ffn_up_b, &L.ffn_down, &L.ffn_down_b }) {
            copies.emplace_back(t, *t);
        }
    }
    if (head) {
        for (ggml_tensor ** t : { &view_->output_norm, &view_->output_norm_b, &view_->output }) copies.emplace_back(t, *t);
    }
    ggml_init_params ip = { ggml_tensor_overhead() * (copies.size() + 1), nullptr, /*no_alloc =*/ true };
    dev_ctx_ = ggml_init(ip);
    if (!dev_ctx_) throw error("ERR_OUT_OF_MEMORY", "cannot allocate a ggml context");
    for (auto & [slot, src] : copies) {
        ggml_tensor * t = ggml_dup_tensor(dev_ctx_, src);
        ggml_set_name(t, src == model_->token_embd ? "output.weight" : src->name);   // a tied head gets its own copy
        *slot = t;
    }
    if (!copies.empty()) {
        dev_buf_ = ggml_backend_alloc_ctx_tensors_from_buft(dev_ctx_, buft);
        if (!dev_buf_) {
            size_t bytes = 0;
            for (auto & c : copies) bytes += ggml_nbytes(c.second);
            throw error("ERR_OUT_OF_MEMORY", "cannot allocate " + std::to_string(bytes >> 20) + " MiB for the weights in " +
                        ggml_backend_buft_name(buft) + " (fewer gpuLayers need less)");
        }
        ggml_backend_buffer_set_usage(dev_buf_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        for (auto & [slot, src] : copies) ggml_backend_tensor_set(*slot, src->data, 0, ggml_nbytes(src));
    }
    n_offloaded_ = gpu_ ? n_off : 0;

    // Offloaded layers keep their K and V on the device.
    std::vector<ggml_backend_buffer_type *> kv_buft(hp.n_layer, ggml_backend_get_default_buffer_type(backend_));
    for (uint32_t il = first; il < hp.n_layer; ++il) kv_buft[il] = buft;
    kv_ = std::make_unique<kv_cache>(hp, params_.n_ctx, params_.n_seq, params_.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16, kv_buft);

    // The scheduler: the device first, the CPU last (ggml's rule); it assigns each op to the
    // backend holding its weights and copies activations across.
    std::vector<ggml_backend_t> backends;
    if (gpu_) backends.push_back(gpu_);
    backends.push_back(backend_);
    const size_t max_segments = std::min<size_t>((size_t) params_.n_seq + 1, params_.n_batch);
    sched_ = ggml_backend_sched_new(backends.data(), nullptr, (int) backends.size(), 2 * graph_max_nodes(*model_, max_segments) + 1024,
                                    /*parallel =*/ false, /*op_offload =*/ true);
    if (!sched_) throw error("ERR_BACKEND", "cannot create the backend scheduler");
    log_write(log_level::debug, "gpt2-node", "scheduler over " + std::to_string(backends.size()) + " backend(s); " +
              std::to_string(copies.size()) + " weight tensors (" + std::to_string(dev_buf_ ? ggml_backend_buffer_get_size(dev_buf_) >> 10 : 0) +
              " KiB) copied to " + ggml_backend_buft_name(buft) + "\n");
}

void decoder::release() {
    if (sched_) { ggml_backend_sched_free(sched_); sched_ = nullptr; }
    if (galloc_) { ggml_gallocr_free(galloc_); galloc_ = nullptr; }
    kv_.reset();
    if (dev_buf_) { ggml_backend_buffer_free(dev_buf_); dev_buf_ = nullptr; }
    if (dev_ctx_) { ggml_free(dev_ctx_); dev_ctx_ = nullptr; }
    if (own_buf_) { ggml_backend_buffer_free(own_buf_); own_buf_ = nullptr; }
    if (own_ctx_) { ggml_free(own_ctx_); own_ctx_ = nullptr; }
    view_.reset();
    if (gpu_) { ggml_backend_free(gpu_); gpu_ = nullptr; }
    if (backend_) { ggml_backend_free(backend_); backend_ = nullptr; }
    if (threadpool_) { ggml_threadpool_free(threadpool_); threadpool_ = nullptr; }
}

decoder::~decoder() { release(); }

size_t decoder::compute_bytes() const {
    if (!sched_) return ggml_gallocr_get_buffer_size(galloc_, 0);
    size_t n = ggml_backend_sched_get_buffer_size(sched_, backend_);
    if (gpu_) n += ggml_backend_sched_get_buffer_size(sched_, gpu_);
    return n;
}

void decoder::pause() {
    if (threadpool_ && !paused_) {
        ggml_threadpool_pause(threadpool_);
        paused_ = true;
    }
}

void decoder::check(const batch & b) const {
    const uint32_t T = (uint32_t) b.tokens.size();
    if (T == 0) throw range_error("empty batch");
    if (T > params_.n_batch) throw range_error("batch of " + std::to_string(T) + " tokens exceeds n_batch " + std::to_string(params_.n_batch));
    if (b.pos.size() != T) throw range_error("batch pos and tokens differ in length");
    const uint32_t n_vocab = model_->hp.n_vocab;
    for (uint32_t i = 0; i < T; ++i) {
        if (b.tokens[i] < 0 || (uint32_t) b.tokens[i] >= n_vocab) {
            throw range_error("Expected integer between 0 and " + std::to_string(n_vocab - 1) + " for token id but received " + std::to_string(b.tokens[i]));
        }
    }
    uint32_t next = 0;
    std::vector<bool> seen(params_.n_seq, false);
    for (const batch_segment & s : b.segments) {
        if (s.slot >= params_.n_seq) throw range_error("segment slot " + std::to_string(s.slot) + " out of range");
        if (seen[s.slot]) throw range_error("two segments of one batch use slot " + std::to_string(s.slot));
        seen[s.slot] = true;
        if (s.n_tokens == 0 || s.first != next) throw range_error("batch segments must be contiguous and non-empty");
        if ((uint64_t) s.n_past + s.n_tokens > params_.n_ctx) {
            throw error("ERR_CONTEXT_FULL", "sequence would reach position " + std::to_string(s.n_past + s.n_tokens) +
                        " but the context holds " + std::to_string(params_.n_ctx));
        }
        for (uint32_t i = 0; i < s.n_tokens; ++i) {
            if ((uint32_t) b.pos[s.first + i] != s.n_past + i) throw range_error("batch positions must follow n_past");
        }
        next += s.n_tokens;
    }
    if (next != T) throw range_error("batch segments do not cover the batch");
    for (size_t i = 0; i < b.out_rows.size(); ++i) {
        if (b.out_rows[i] < 0 || (uint32_t) b.out_rows[i] >= T || (i > 0 && b.out_rows[i] <= b.out_rows[i - 1])) {
            throw range_error("batch out_rows must be ascending indices into the batch");
        }
    }
}

decode_status decoder::decode(const batch & b_in, std::vector<float> & logits) {
    check(b_in);
    // Adjustments that leave the results as asked (batch invariance): ggml's CPU matmul takes
    // another kernel for one row than for several (llamafile's tinyBLAS needs n >= 2), and for
    // some weight types (f16) the two round differently, yet a sequence's numbers must not depend
    // on whether it runs alone or among others. So, unless the load-time probes found every
    // matmul row-count invariant (for f16 and f32 they do once a lone row goes through our
    // kernel, cpu_op_state::own_lone_rows), every matmul gets at least two rows (pad_): a batch of one
    // token gets a padding row (a token in the scratch cell), and a batch with
    // fewer than two output rows gets extra ones (the last layer's MLP and the LM head run on
    // output rows only). The extra rows are computed and dropped.
    batch b = b_in;
    if (pad_ && b.tokens.size() == 1) {
        const uint32_t pad_token = 0;
        b.add_segment(kv_->scratch_slot(), 0, &pad_token, 1, batch::logits::none);
    }
    std::vector<int32_t> keep;   // positions within the computed rows that the caller asked for
    for (size_t i = 0; i < b_in.out_rows.size(); ++i) keep.push_back((int32_t) i);
    const size_t min_out = pad_ ? 2 : 1;   // the graph needs one output row in any case
    for (int32_t row = (int32_t) b.tokens.size() - 1; b.out_rows.size() < min_out && row >= 0; --row) {
        auto at = std::lower_bound(b.out_rows.begin(), b.out_rows.end(), row);
        if (at != b.out_rows.end() && *at == row) continue;
        const int32_t pos = (int32_t) (at - b.out_rows.begin());
        for (int32_t & k : keep) if (k >= pos) ++k;
        b.out_rows.insert(at, row);
    }

    // The extra rows only need to pass the last layer: when the LM head's kernel gives one row
    // the same numbers alone as among others (probed at load), it computes the asked rows only.
    if (head_invariant_ && keep.size() < b.out_rows.size()) {
        b.head_rows = keep.empty() ? std::vector<int32_t>{ 0 } : keep;
        for (size_t i = 0; i < keep.size(); ++i) keep[i] = (int32_t) i;
    }

    const size_t n_nodes = graph_max_nodes(*model_, b.segments.size());
    const size_t need = ggml_tensor_overhead() * n_nodes * 2 + ggml_graph_overhead_custom(n_nodes, false);
    if (meta_.size() < need) meta_.resize(need);
    ggml_init_params ip = { meta_.size(), meta_.data(), true };
    ggml_context * ctx = ggml_init(ip);
    struct ctx_guard { ggml_context * c; ~ctx_guard() { ggml_free(c); } } guard { ctx };

    ggml_cgraph * gf = graph_build(ctx, graph_model(), *kv_, b, cpu_ops());
    if (sched_) {
        ggml_backend_sched_reset(sched_);
        if (!ggml_backend_sched_alloc_graph(sched_, gf)) throw error("ERR_OUT_OF_MEMORY", "cannot allocate the compute graph");
    } else if (!ggml_gallocr_alloc_graph(galloc_, gf)) {
        throw error("ERR_OUT_OF_MEMORY", "cannot allocate the compute graph");
    }

    ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "tokens"), b.tokens.data(), 0, b.tokens.size() * sizeof(int32_t));
    ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "pos"), b.pos.data(), 0, b.pos.size() * sizeof(int32_t));
    {
        std::vector<int64_t> cells(b.tokens.size());
        for (const batch_segment & seg : b.segments) {
            for (uint32_t i = 0; i < seg.n_tokens; ++i) cells[seg.first + i] = (int64_t) seg.slot * kv_->n_ctx + seg.n_past + i;
        }
        ggml_backend_tensor_set(ggml_graph_get_tensor(gf, "kv_cells"), cells.data(), 0, cells.size() * sizeof(int64_t));
    }
    if (ggml_tensor * out = ggml_graph_get_tensor(gf, "out_ids")) {
        ggml_backend_tensor_set(out, b.out_rows.data(), 0, b.out_rows.size() * sizeof(int32_t));
    }
    if (ggml_tensor * head = ggml_graph_get_tensor(gf, "head_ids")) {
        ggml_backend_tensor_set(head, b.head_rows.data(), 0, b.head_rows.size() * sizeof(int32_t));
    }
    if (ggml_tensor * dec = ggml_graph_get_tensor(gf, "dec_rows")) {
        std::vector<int32_t> rows;
        for (const batch_segment & seg : b.segments) {
            if (seg.n_tokens == 1) rows.insert(rows.end(), { (int32_t) seg.first, (int32_t) (seg.slot * kv_->n_ctx), (int32_t) seg.n_past + 1 });
        }
        ggml_backend_tensor_set(dec, rows.data(), 0, rows.size() * sizeof(int32_t));
    }
    const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f);
    const ggml_fp16_t ninf = ggml_fp32_to_fp16(-INFINITY);
    for (size_t s = 0; s < b.segments.size(); ++s) {
        const batch_segment & seg = b.segments[s];
        if (seg.n_tokens == 1) continue;
        ggml_tensor * mask = ggml_graph_get_tensor(gf, ("kq_mask." + std::to_string(s)).c_str());
        const uint32_t n_kv = seg.n_past + seg.n_tokens;
        mask_buf_.resize((size_t) n_kv * seg.n_tokens);
        for (uint32_t i = 0; i < seg.n_tokens; ++i) {
            for (uint32_t j = 0; j < n_kv; ++j) mask_buf_[(size_t) i * n_kv + j] = j <= seg.n_past + i ? zero : ninf;
        }
        ggml_backend_tensor_set(mask, mask_buf_.data(), 0, mask_buf_.size() * sizeof(uint16_t));
    }

    if (paused_) {
        ggml_threadpool_resume(threadpool_);
        paused_ = false;
    }
    ggml_backend_cpu_set_abort_callback(backend_, abort_cb, (void *) abort_flag_);
    const ggml_status st = sched_ ? ggml_backend_sched_graph_compute(sched_, gf) : ggml_backend_graph_compute(backend_, gf);
    if (st == GGML_STATUS_ABORTED) return decode_status::aborted;
    if (st != GGML_STATUS_SUCCESS) throw error("ERR_COMPUTE", std::string("graph computation failed: ") + ggml_status_to_string(st));

    ggml_tensor * out = ggml_graph_get_tensor(gf, "logits");
    const size_t n_vocab = model_->hp.n_vocab;
    const size_t row_bytes = n_vocab * sizeof(float);
    logits.resize(keep.size() * n_vocab);
    for (size_t i = 0; i < keep.size(); ++i) {
        ggml_backend_tensor_get(out, logits.data() + i * n_vocab, (size_t) keep[i] * row_bytes, row_bytes);
    }
    return decode_status::ok;
}

} // namespace gpt2
