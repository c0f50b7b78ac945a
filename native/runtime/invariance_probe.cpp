// Batch invariance, checked rather than assumed: at load the decoder multiplies each kind of
// weight by one set of columns in views of different widths and compares a column's products to
// the bit. Whichever kernels pass (ours, ggml's, ggml's repacked ones) are the ones the graph
// takes; if the matmuls stay row-count dependent, a lone row gets a padding row (decode()).
#include "runtime/decoder.h"

#include "kernels/dispatch.h"
#include "kernels/simd.h"
#include "util/log.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml.h"

#include <algorithm>
#include <cstring>

namespace gpt2 {

// Views (offset, width) for decoder::row_count_invariant(), the probed row being column 4: any
// row count, the probed row first or among others; 72 rows take ggml's kernel for many rows where
// decoding steps take ours (kernels/dispatch.cpp, block_matmul).
static const std::vector<std::pair<int, int>> k_any_rows = { { 4, 1 }, { 4, 2 }, { 3, 2 }, { 4, 7 }, { 1, 7 }, { 0, 16 }, { 0, 72 } };
// The same without the lone row: what a padding row leaves to hold.
static const std::vector<std::pair<int, int>> k_two_or_more = { { 4, 2 }, { 3, 2 }, { 4, 7 }, { 1, 7 }, { 0, 16 }, { 0, 72 } };

void decoder::choose_kernels() {
    // Which matmuls give a row the same numbers alone as among others (see decode()). Probed on
    // the CPU path only: the scheduler path splits the graph, and a GPU picks kernels by size.
    // Repacked weights are probed as repacked; ggml's interleaved kernels take a gemm for groups
    // of 4 rows and a gemv for the rest, which may round differently (its q4_K's do: ours takes
    // q4_K first): with batch invariance asked for, ggml's repacked copies are then dropped and
    // those weights probed as stored. (A gemm alone is invariant, so padding every batch to a
    // multiple of 4 rows would do, but a lone stream would then compute 4 rows per token.)
    if (cpu_ops()) cpu_kernels_ = simd::path_id(simd::path());
    const bool probe            = params_.batch_invariant && !sched_;
    bool       blocks_invariant = probe && blocks_row_count_invariant(k_any_rows);
    if (probe && !blocks_invariant && !repacked_slots_.empty()) {
        log_write(log_level::debug, "gpt2-node", "repacked weights are not row-count invariant; multiplying them as stored\n");
        drop_repacked();
        blocks_invariant = blocks_row_count_invariant(k_any_rows);
    }
    const bool quantized_blocks = std::any_of(graph_model().layers.begin(), graph_model().layers.end(), [](const layer & L) {
        return ggml_is_quantized(L.attn_qkv->type) || ggml_is_quantized(L.attn_out->type) || ggml_is_quantized(L.ffn_up->type) ||
            ggml_is_quantized(L.ffn_down->type);
    });
    if (probe && !blocks_invariant && cpu_ops() && quantized_blocks) {
        // Our quantized kernel and ggml's for many rows disagree (not seen: ours follows ggml's
        // arithmetic, but ggml's may differ on another CPU): ggml's alone then.
        cpu_ops_.own_quant_blocks = false;
        blocks_invariant          = blocks_row_count_invariant(k_any_rows);
        if (!blocks_invariant) cpu_ops_.own_quant_blocks = true;
    }
    if (probe && !blocks_invariant && cpu_ops()) {
        // ggml multiplies a few rows with another kernel than many (f16, f32): try ours for them,
        // which sums as llamafile's tinyBLAS does, in place of a padding row.
        cpu_ops_.own_few_rows = true;
        blocks_invariant      = blocks_row_count_invariant(k_any_rows);
        if (!blocks_invariant) cpu_ops_.own_few_rows = false;
    }
    head_invariant_ = probe && row_count_invariant(graph_model().output, { { 4, 1 }, { 4, 2 }, { 1, 7 } }, /*head =*/true);
    pad_            = params_.batch_invariant && !(blocks_invariant && head_invariant_);
    if (probe && pad_) {
        // A padding row mends only one row against several. Where ggml's kernels also round two
        // rows differently from many (seen on arm64 under emulation: its NEON f16 and f32 matmuls),
        // batch invariance does not hold on this CPU: model.info says so, and a warning names it.
        invariance_holds_ = blocks_row_count_invariant(k_two_or_more) &&
            (head_invariant_ || row_count_invariant(graph_model().output, { { 4, 2 }, { 1, 7 } }, /*head =*/true));
        if (!invariance_holds_) {
            log_write(log_level::warn, "gpt2-node",
                      "batch invariance does not hold on this CPU for these weights: ggml's matmuls round a row differently "
                      "with different numbers of rows beside it, which a padding row cannot mend; a request's numbers may "
                      "depend on its neighbours (model.info.batchInvariant is false)\n");
        }
    }
    if (gpu_) {
        // Batch invariance is CPU-only. A GPU backend picks its matmul kernels by the number of
        // rows (ggml-vulkan: a matrix-vector kernel for a few rows, tiles of three sizes and a
        // split of the sum for more), so a row's sums depend on the batch, and a padding row
        // cannot mend that: measured on lavapipe, 31 of 32 prompts' logits differ alone and
        // among 31 others (test/device/engine.test.ts). No padding, then, and no claim.
        pad_              = false;
        invariance_holds_ = false;
        if (params_.batch_invariant) {
            log_write(log_level::warn, "gpt2-node",
                      "batch invariance holds on the CPU only: on " + device_id_ +
                          " a request's numbers may depend on the requests beside it (model.info.batchInvariant is false; "
                          "batchInvariant: false silences this)\n");
        }
    }
    log_write(log_level::debug, "gpt2-node",
              std::string("row-count invariant: LM head ") + (head_invariant_ ? "yes" : "no") + ", blocks " +
                  (blocks_invariant ? "yes" : "no") + (cpu_ops_.own_few_rows ? " (few rows through our kernel)" : "") +
                  (cpu_ops_.own_quant_blocks ? "" : " (quantized blocks through ggml's kernels only)") + "\n");
    if (!repacked_slots_.empty()) {
        log_write(log_level::debug, "gpt2-node",
                  std::to_string(repacked_slots_.size()) + " weight tensors (" +
                      std::to_string(ggml_backend_buffer_get_size(dev_buf_.get()) >> 10) + " KiB) repacked for CPU_REPACK\n");
    }
    if (n_interleaved_ > 0) {
        log_write(log_level::debug, "gpt2-node",
                  std::to_string(n_interleaved_) + " q4_K weight tensors (" +
                      std::to_string(ggml_backend_buffer_get_size(own_buf_.get()) >> 10) + " KiB) interleaved four rows at a time\n");
    }
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
    int           n_cols = 0;
    for (auto [off, width] : views) n_cols = std::max(n_cols, off + width);
    std::vector<uint8_t>   meta(ggml_tensor_overhead() * 64 + ggml_graph_overhead());
    ggml_init_params       ip = { meta.size(), meta.data(), true };
    const ggml_context_ptr owner(ggml_init(ip));
    ggml_context *         ctx = owner.get();
    ggml_tensor *          x   = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, n_cols);
    ggml_set_input(x);
    ggml_cgraph *                              gf = ggml_new_graph(ctx);
    std::vector<std::pair<ggml_tensor *, int>> out;   // product, and the probe column's place in it
    for (auto [off, width] : views) {
        ggml_tensor * xv = ggml_view_2d(ctx, x, K, width, x->nb[1], (size_t) off * x->nb[1]);
        ggml_tensor * y  = head ? lm_head(ctx, w, xv, cpu_ops()) : block_matmul(ctx, w, xv, cpu_ops());   // [N, width]
        ggml_set_output(y);
        ggml_build_forward_expand(gf, y);
        out.emplace_back(y, k_probe_column - off);
    }
    const ggml_gallocr_ptr ga(ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_.get())));
    if (!ggml_gallocr_alloc_graph(ga.get(), gf)) return false;
    std::vector<float> xs((size_t) K * n_cols);
    uint32_t           r = 12345;
    for (float & v : xs) {
        r = r * 1664525u + 1013904223u;
        v = (float) ((r >> 8) & 0xFFFF) / 65536.0f - 0.5f;
    }
    ggml_backend_tensor_set(x, xs.data(), 0, xs.size() * sizeof(float));
    if (ggml_backend_graph_compute(backend_.get(), gf) != GGML_STATUS_SUCCESS) return false;
    std::vector<float> first((size_t) N), other((size_t) N);
    for (size_t i = 0; i < out.size(); ++i) {
        ggml_backend_tensor_get(out[i].first, (i == 0 ? first : other).data(), (size_t) out[i].second * N * sizeof(float),
                                N * sizeof(float));
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
}   // namespace gpt2
