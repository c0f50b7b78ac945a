// Runs forward passes of one model over a batch, with one KV cache, on the CPU or on a GPU.
// Owns the backends, the CPU thread pool, the cache and the compute buffers. Not thread-safe:
// one thread (the engine's) drives it.
//
// On the CPU the model's weights are used where they lie (the file mapping) and one graph
// allocator serves the compute. With a GPU, the last `gpu_layers` blocks (and, when all are
// offloaded, the final norm and the LM head) are copied to device memory, their KV cache lives
// there too, and ggml_backend_sched splits each graph between the GPU and the CPU.
//
// decode() validates the batch first (token ids, slots, positions, sizes), so bad input is a
// gpt2::error and never reaches a GGML_ASSERT. On failure or abort the cache is logically
// unchanged: the caller advances its sequences' lengths only after a successful decode.
#pragma once

#include "gpt/batch.h"
#include "gpt/kv_cache.h"
#include "gpt/model.h"
#include "kernels/dispatch.h"

#include "ggml-cpp.h"

#include <atomic>
#include <initializer_list>
#include <utility>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct ggml_backend;
struct ggml_backend_buffer;
struct ggml_backend_buffer_type;
struct ggml_backend_sched;
struct ggml_cgraph;
struct ggml_context;
struct ggml_gallocr;
struct ggml_threadpool;

namespace gpt2 {

// ggml_threadpool_free (decoder.cpp: ggml-cpu.h stays out of this header)
struct threadpool_deleter {
    void operator()(ggml_threadpool * t) const;
};

struct decoder_params {
    uint32_t n_ctx           = 0;       // positions per sequence (≤ the model's)
    uint32_t n_seq           = 1;       // sequences (KV slots)
    uint32_t n_batch         = 512;     // max tokens per forward pass
    uint32_t n_threads       = 0;       // 0: the number of physical cores, at most 4
    bool     kv_f32          = false;   // KV cache in f32 instead of f16
    bool     batch_invariant = true;    // a sequence's numbers never depend on the rest of the batch
                                        // (costs single-stream speed: see decode())
    std::string device     = "auto";    // see runtime/devices.h
    int32_t     gpu_layers = -1;        // blocks on the GPU, counted from the last; -1: all
    // Run the CPU through the scheduler path that GPUs take (weights copied, sched compute):
    // for testing that path on machines without a GPU. Env GPT2_NODE_SCHED_ON_CPU=1 sets it.
    bool sched_on_cpu = false;
};

enum class decode_status { ok, aborted };

class decoder {
public:
    // shared_pool: another decoder's thread pool, for a decoder driven by the same thread (a draft
    // model's, engine/predictor.h): one set of workers, none spinning while the other computes.
    decoder(std::shared_ptr<const model> m, const decoder_params & p, ggml_threadpool * shared_pool = nullptr);
    ~decoder();
    decoder(const decoder &)             = delete;
    decoder & operator=(const decoder &) = delete;

    // Logits of b.out_rows, row after row (n_vocab floats each), into `logits`.
    decode_status decode(const batch & b, std::vector<float> & logits);

    // Checked between graph nodes; set it to stop a long forward pass.
    void set_abort_flag(const std::atomic<bool> * flag) { abort_flag_ = flag; }

    // Let the thread pool's workers sleep while there is nothing to do (its owner's call).
    void              pause();
    ggml_threadpool * threadpool() const { return pool_; }

    const model &          mdl() const { return *model_; }
    const std::string &    device_id() const { return device_id_; }      // "cpu", "cuda:0", ...
    uint32_t               gpu_layers() const { return n_offloaded_; }   // 0 on the CPU
    const decoder_params & params() const { return params_; }
    size_t                 kv_bytes() const { return kv_->bytes(); }
    size_t                 compute_bytes() const;
    // Block weight tensors multiplied from ggml's CPU_REPACK layout (0: all as stored).
    uint32_t repacked_weights() const { return (uint32_t) repacked_slots_.size(); }
    uint32_t interleaved_weights() const { return n_interleaved_; }
    // The path our CPU kernels took at load ("avx512", "avx2", "portable"; simd_x86.h), or "none"
    // where ggml's ops run throughout (a GPU).
    const char * cpu_kernels() const { return cpu_kernels_; }
    // Whether a lone row gets a padding row for batch invariance (see decode()).
    bool pads_lone_row() const { return pad_; }
    // Whether batch invariance was asked for and holds: false where the probes find kernels that
    // round two rows differently from seven or seventy-two, which no padding row can mend.
    bool batch_invariant() const { return params_.batch_invariant && invariance_holds_; }

private:
    // decoder.cpp
    void init();
    void reserve_compute();
    void release();
    void check(const batch & b) const;
    void set_inputs(ggml_cgraph * gf, const batch & b);

    // invariance_probe.cpp: which kernels the graph takes (cpu_ops_), and whether a lone row
    // needs a padding row (pad_, head_invariant_).
    void choose_kernels();
    // Whether w times each view (offset, width) of one set of columns gives the column they share
    // the same bits: a kernel that computes a row alike whatever the rows beside it. head: w is
    // the LM head, multiplied as graph_build() does (lm_head()).
    bool row_count_invariant(ggml_tensor * w, const std::vector<std::pair<int, int>> & views, bool head);
    // The same for every kind of block weight the graph reads.
    bool blocks_row_count_invariant(const std::vector<std::pair<int, int>> & views);

    // weight_layout.cpp
    // CPU path: a view_ of the model whose q4_K block weights are in our interleaved layout and
    // whose others ggml's CPU_REPACK takes are in its own (unless GPT2_NODE_NO_REPACK is set).
    void repack_weights();
    // Copies the block weights of `v` that ggml's CPU_REPACK buffer type takes into one
    // (dev_buf_), and points `v` at them (repacked_slots_ remembers the originals).
    void repack_for_ggml(model & v);
    // Copies the q4_K block weights and LM head of `v` that our interleaved layout takes into own_buf_, and
    // points `v` at them; returns how many.
    uint32_t interleave_weights(model & v);
    // Back to the weights as stored from ggml's repacked copies (they would break batch
    // invariance). Our interleaved ones stay: one kernel takes every row count.
    void drop_repacked();
    // Copies the offloaded layers' weights into `buft` and builds the scheduler (GPU path).
    void offload(ggml_backend_buffer_type * buft);
    // The model the graph reads: the original, or a view whose offloaded tensors are the copies.
    const model & graph_model() const { return view_ ? *view_ : *model_; }
    // Our own CPU ops' state; none with a GPU (the scheduler would move their inputs, the KV
    // cache among them, to the CPU).
    cpu_op_state * cpu_ops() { return gpu_ ? nullptr : &cpu_ops_; }

    std::shared_ptr<const model> model_;
    decoder_params               params_;
    std::string                  device_id_   = "cpu";
    uint32_t                     n_offloaded_ = 0;
    ggml_backend_ptr             gpu_;     // null on the CPU path
    ggml_backend_sched_ptr       sched_;   // the scheduler path (GPU, or sched_on_cpu)
    std::unique_ptr<model>       view_;
    ggml_context_ptr             dev_ctx_;   // the weight copies' tensors
    ggml_backend_buffer_ptr      dev_buf_;   // and their memory
    std::vector<std::pair<ggml_tensor **, ggml_tensor *>>
                     repacked_slots_;   // view_'s slots holding ggml's repacked copies, and the originals (their count: repacked_weights())
    ggml_context_ptr own_ctx_;          // our interleaved copies' tensors
    ggml_backend_buffer_ptr                              own_buf_;   // and their memory
    ggml_backend_ptr                                     backend_;
    std::unique_ptr<ggml_threadpool, threadpool_deleter> threadpool_;         // own, unless shared
    ggml_threadpool *                                    pool_   = nullptr;   // the one used
    bool                                                 paused_ = false;
    std::unique_ptr<kv_cache>                            kv_;
    ggml_gallocr_ptr                                     galloc_;
    std::vector<uint8_t>                                 meta_;   // ggml context memory for graph metadata
    const std::atomic<bool> *                            abort_flag_ = nullptr;
    std::vector<uint16_t>                                mask_buf_;                    // f16 mask staging
    cpu_op_state                                         cpu_ops_;                     // see cpu_ops()
    bool                                                 head_invariant_   = false;    // the LM head is row-count invariant (probed)
    bool                                                 pad_              = true;     // a lone row gets a padding row (see decode())
    bool                                                 invariance_holds_ = true;     // false: no padding makes it hold (choose_kernels())
    const char *                                         cpu_kernels_      = "none";   // see cpu_kernels()
    uint32_t                                             n_interleaved_    = 0;        // see interleave_weights()
};

uint32_t default_thread_count();

}   // namespace gpt2
