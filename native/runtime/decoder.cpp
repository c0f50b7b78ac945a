// The decoder's life cycle and its one job per step: backends and thread pool (init), a batch
// checked and turned into a graph's inputs, one forward pass. The weights' layout is set up in
// weight_layout.cpp, the kernels chosen by probes in invariance_probe.cpp.
#include "runtime/decoder.h"

#include "runtime/devices.h"
#include "runtime/paged_buffer.h"
#include "gpt/graph.h"
#include "kernels/dispatch.h"
#include "util/error.h"
#include "util/log.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpp.h"
#include "ggml-cpu.h"
#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace gpt2 {

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

decoder::decoder(std::shared_ptr<const model> m, const decoder_params & p, ggml_threadpool * shared_pool)
    : model_(std::move(m)), params_(p), pool_(shared_pool) {
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
        throw range_error("contextSize " + std::to_string(params_.n_ctx) + " exceeds the model's " + std::to_string(hp.n_ctx) +
                          " learned positions");
    }
    if (params_.n_seq == 0) throw range_error("the number of sequences must be at least 1");
    if (params_.n_batch == 0) params_.n_batch = 512;
    if (params_.n_threads == 0) params_.n_threads = default_thread_count();
    if (const char * e = std::getenv("GPT2_NODE_SCHED_ON_CPU"); e && std::strcmp(e, "1") == 0) params_.sched_on_cpu = true;
    if (params_.gpu_layers > (int32_t) hp.n_layer) { throw range_error(expected_integer("gpuLayers", 0, hp.n_layer, params_.gpu_layers)); }

    backend_.reset(ggml_backend_cpu_init());
    if (!backend_) throw error(codes::backend, "cannot initialize the CPU backend");

    if (!pool_) {
        ggml_threadpool_params tpp = ggml_threadpool_params_default((int) params_.n_threads);
        threadpool_.reset(ggml_threadpool_new(&tpp));
        if (!threadpool_) throw error(codes::backend, "cannot create a thread pool of " + std::to_string(params_.n_threads) + " threads");
        pool_ = threadpool_.get();
    }
    ggml_backend_cpu_set_threadpool(backend_.get(), pool_);
    ggml_backend_cpu_set_n_threads(backend_.get(), (int) params_.n_threads);
    ggml_backend_cpu_set_abort_callback(backend_.get(), abort_cb, nullptr);

    // The device: a GPU when asked for (or found, with 'auto'), else the CPU.
    const device_choice choice = device_select(params_.device);
    if (choice.dev) {
        gpu_.reset(ggml_backend_dev_init(choice.dev, nullptr));
        if (!gpu_) {
            if (choice.requested) throw error(codes::no_device, "cannot initialize device " + choice.id);
            log_write(log_level::warn, "gpt2-node",
                      "cannot initialize " + choice.id + " (" + ggml_backend_dev_description(choice.dev) + "); running on the CPU\n");
        }
    }
    if (gpu_ && params_.gpu_layers != 0) {
        device_id_ = choice.id;
        offload(ggml_backend_dev_buffer_type(choice.dev));
        log_write(log_level::info, "gpt2-node",
                  "running " + std::to_string(n_offloaded_) + " of " + std::to_string(hp.n_layer) + " layers on " + choice.id + " (" +
                      ggml_backend_dev_description(choice.dev) + ")\n");
    } else {
        gpu_.reset();
        if (params_.sched_on_cpu) offload(ggml_backend_get_default_buffer_type(backend_.get()));
    }
    if (!sched_) {
        kv_ = std::make_unique<kv_cache>(
            hp, params_.n_ctx, params_.n_seq, params_.kv_f32 ? GGML_TYPE_F32 : GGML_TYPE_F16,
            std::vector<ggml_backend_buffer_type *>(hp.n_layer, ggml_backend_get_default_buffer_type(backend_.get())));
        galloc_.reset(ggml_gallocr_new(paged_cpu_buffer_type()));   // mapped, returned when freed
    }

    if (!sched_) repack_weights();   // weight_layout.cpp
    choose_kernels();                // invariance_probe.cpp
    reserve_compute();
}

void decoder::reserve_compute() {
    // Reserve the compute buffer once for a full batch at the end of the context with logits for
    // two rows (generation, scoring a chunk's last rows). A batch wanting logits for many rows
    // (evaluate with allPositions: 512 rows of 50257 floats are 100 MB) grows it when it comes,
    // instead of every process paying for it up front.
    batch                 worst;
    const uint32_t        n = std::min(params_.n_batch, params_.n_ctx);
    std::vector<uint32_t> ids(n, 0);
    worst.add_segment(0, params_.n_ctx - n, ids.data(), n, batch::logits::none);
    worst.out_rows = { (int32_t) n - 2 >= 0 ? (int32_t) n - 2 : 0, (int32_t) n - 1 };
    if (worst.out_rows[0] == worst.out_rows[1]) worst.out_rows.pop_back();
    meta_.resize(ggml_tensor_overhead() * graph_max_nodes(*model_, 1) * 2 + ggml_graph_overhead_custom(graph_max_nodes(*model_, 1), false));
    ggml_init_params       ip = { meta_.size(), meta_.data(), true };
    const ggml_context_ptr ctx(ggml_init(ip));
    ggml_cgraph *          gf = graph_build(ctx.get(), graph_model(), *kv_, worst, cpu_ops());
    const bool             ok = sched_ ? ggml_backend_sched_reserve(sched_.get(), gf) : ggml_gallocr_reserve(galloc_.get(), gf);
    if (!ok) throw error(codes::out_of_memory, "cannot allocate the compute buffer");
}

void decoder::release() {
    // in this order: what runs on a backend or lives in its buffers before the backend
    sched_.reset();
    galloc_.reset();
    kv_.reset();
    dev_buf_.reset();
    dev_ctx_.reset();
    own_buf_.reset();
    own_ctx_.reset();
    view_.reset();
    gpu_.reset();
    backend_.reset();
    threadpool_.reset();
}

void threadpool_deleter::operator()(ggml_threadpool * t) const { ggml_threadpool_free(t); }

decoder::~decoder() { release(); }

size_t decoder::compute_bytes() const {
    if (!sched_) return ggml_gallocr_get_buffer_size(galloc_.get(), 0);
    size_t n = ggml_backend_sched_get_buffer_size(sched_.get(), backend_.get());
    if (gpu_) n += ggml_backend_sched_get_buffer_size(sched_.get(), gpu_.get());
    return n;
}

void decoder::pause() {
    if (threadpool_ && !paused_) {   // a shared pool is paused by its owner (a compute resumes it)
        ggml_threadpool_pause(threadpool_.get());
        paused_ = true;
    }
}

void decoder::check(const batch & b) const {
    const uint32_t T = (uint32_t) b.tokens.size();
    if (T == 0) throw range_error("empty batch");
    if (T > params_.n_batch)
        throw range_error("batch of " + std::to_string(T) + " tokens exceeds n_batch " + std::to_string(params_.n_batch));
    if (b.pos.size() != T) throw range_error("batch pos and tokens differ in length");
    const uint32_t n_vocab = model_->hp.n_vocab;
    for (uint32_t i = 0; i < T; ++i) {
        if (b.tokens[i] < 0 || (uint32_t) b.tokens[i] >= n_vocab) {
            throw range_error(expected_integer("token id", 0, n_vocab - 1, b.tokens[i]));
        }
    }
    uint32_t          next = 0;
    std::vector<bool> seen(params_.n_seq, false);
    // A slot's segments are adjacent and continue each other's positions (a speculating
    // sequence's token and guesses, one-token segments each): then every row's attention sees the
    // keys stored by the rows before it, as in steps of their own.
    const batch_segment * prev = nullptr;
    for (const batch_segment & s : b.segments) {
        if (s.slot >= params_.n_seq) throw range_error("segment slot " + std::to_string(s.slot) + " out of range");
        const bool continues = prev && prev->slot == s.slot && prev->n_past + prev->n_tokens == s.n_past;
        if (seen[s.slot] && !continues) throw range_error("two segments of one batch use slot " + std::to_string(s.slot) + " apart");
        seen[s.slot] = true;
        prev         = &s;
        if (s.n_tokens == 0 || s.first != next) throw range_error("batch segments must be contiguous and non-empty");
        if ((uint64_t) s.n_past + s.n_tokens > params_.n_ctx) {
            throw error(codes::context_full,
                        "sequence would reach position " + std::to_string(s.n_past + s.n_tokens) + " but the context holds " +
                            std::to_string(params_.n_ctx));
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

// Fills the graph's inputs (gpt/graph.h lists them) from the batch.
void decoder::set_inputs(ggml_cgraph * gf, const batch & b) {
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
            if (seg.n_tokens == 1)
                rows.insert(rows.end(), { (int32_t) seg.first, (int32_t) (seg.slot * kv_->n_ctx), (int32_t) seg.n_past + 1 });
        }
        ggml_backend_tensor_set(dec, rows.data(), 0, rows.size() * sizeof(int32_t));
    }
    const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f);
    const ggml_fp16_t ninf = ggml_fp32_to_fp16(-INFINITY);
    for (size_t s = 0; s < b.segments.size(); ++s) {
        const batch_segment & seg = b.segments[s];
        if (seg.n_tokens == 1) continue;
        ggml_tensor *  mask = ggml_graph_get_tensor(gf, ("kq_mask." + std::to_string(s)).c_str());
        const uint32_t n_kv = seg.n_past + seg.n_tokens;
        mask_buf_.resize((size_t) n_kv * seg.n_tokens);
        for (uint32_t i = 0; i < seg.n_tokens; ++i) {
            for (uint32_t j = 0; j < n_kv; ++j) mask_buf_[(size_t) i * n_kv + j] = j <= seg.n_past + i ? zero : ninf;
        }
        ggml_backend_tensor_set(mask, mask_buf_.data(), 0, mask_buf_.size() * sizeof(uint16_t));
    }
}

decode_status decoder::decode(const batch & b_in, std::vector<float> & logits) {
    check(b_in);
    // Adjustments that leave the results as asked (batch invariance): ggml's CPU matmul takes
    // another kernel for one row than for several (llamafile's tinyBLAS needs n >= 2), and for
    // some weight types (f16) the two round differently, yet a sequence's numbers must not depend
    // on whether it runs alone or among others. So, unless the load-time probes found every
    // matmul row-count invariant (for f16 and f32 they do once a lone row goes through our
    // kernel, cpu_op_state::own_few_rows), every matmul gets at least two rows (pad_): a batch of one
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
        for (int32_t & k : keep)
            if (k >= pos) ++k;
        b.out_rows.insert(at, row);
    }

    // The extra rows only need to pass the last layer: when the LM head's kernel gives one row
    // the same numbers alone as among others (probed at load), it computes the asked rows only.
    if (head_invariant_ && keep.size() < b.out_rows.size()) {
        b.head_rows = keep.empty() ? std::vector<int32_t>{ 0 } : keep;
        for (size_t i = 0; i < keep.size(); ++i) keep[i] = (int32_t) i;
    }

    const size_t n_nodes = graph_max_nodes(*model_, b.segments.size());
    const size_t need    = ggml_tensor_overhead() * n_nodes * 2 + ggml_graph_overhead_custom(n_nodes, false);
    if (meta_.size() < need) meta_.resize(need);
    ggml_init_params       ip = { meta_.size(), meta_.data(), true };
    const ggml_context_ptr owner(ggml_init(ip));
    ggml_context *         ctx = owner.get();

    ggml_cgraph * gf = graph_build(ctx, graph_model(), *kv_, b, cpu_ops());
    if (sched_) {
        ggml_backend_sched_reset(sched_.get());
        if (!ggml_backend_sched_alloc_graph(sched_.get(), gf)) throw error(codes::out_of_memory, "cannot allocate the compute graph");
    } else if (!ggml_gallocr_alloc_graph(galloc_.get(), gf)) {
        throw error(codes::out_of_memory, "cannot allocate the compute graph");
    }

    set_inputs(gf, b);

    if (paused_) {
        ggml_threadpool_resume(threadpool_.get());
        paused_ = false;
    }
    ggml_backend_cpu_set_abort_callback(backend_.get(), abort_cb, (void *) abort_flag_);
    const ggml_status st = sched_ ? ggml_backend_sched_graph_compute(sched_.get(), gf) : ggml_backend_graph_compute(backend_.get(), gf);
    if (st == GGML_STATUS_ABORTED) return decode_status::aborted;
    if (st != GGML_STATUS_SUCCESS) throw error(codes::compute, std::string("graph computation failed: ") + ggml_status_to_string(st));

    ggml_tensor * out       = ggml_graph_get_tensor(gf, "logits");
    const size_t  n_vocab   = model_->hp.n_vocab;
    const size_t  row_bytes = n_vocab * sizeof(float);
    logits.resize(keep.size() * n_vocab);
    for (size_t i = 0; i < keep.size(); ++i) {
        ggml_backend_tensor_get(out, logits.data() + i * n_vocab, (size_t) keep[i] * row_bytes, row_bytes);
    }
    return decode_status::ok;
}

}   // namespace gpt2
