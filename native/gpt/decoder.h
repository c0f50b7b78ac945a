// Runs forward passes of one model over a batch, on one backend, with one KV cache.
// Owns the backend, its thread pool, the cache and the compute buffer. Not thread-safe: one
// thread (the engine's) drives it.
//
// decode() validates the batch first (token ids, slots, positions, sizes), so bad input is a
// gpt2::error and never reaches a GGML_ASSERT. On failure or abort the cache is logically
// unchanged: the caller advances its sequences' lengths only after a successful decode.
#pragma once

#include "gpt/batch.h"
#include "gpt/kv_cache.h"
#include "gpt/model.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

struct ggml_backend;
struct ggml_gallocr;
struct ggml_threadpool;

namespace gpt2 {

struct decoder_params {
    uint32_t n_ctx     = 0;     // positions per sequence (≤ the model's)
    uint32_t n_seq     = 1;     // sequences (KV slots)
    uint32_t n_batch   = 512;   // max tokens per forward pass
    uint32_t n_threads = 0;     // 0: the number of physical cores, at most 4
    bool     kv_f32    = false; // KV cache in f32 instead of f16
    bool     batch_invariant = true; // a sequence's numbers never depend on the rest of the batch
                                     // (costs single-stream speed: see decode())
};

enum class decode_status { ok, aborted };

class decoder {
public:
    decoder(std::shared_ptr<const model> m, const decoder_params & p);
    ~decoder();
    decoder(const decoder &) = delete;
    decoder & operator=(const decoder &) = delete;

    // Logits of b.out_rows, row after row (n_vocab floats each), into `logits`.
    decode_status decode(const batch & b, std::vector<float> & logits);

    // Checked between graph nodes; set it to stop a long forward pass.
    void set_abort_flag(const std::atomic<bool> * flag) { abort_flag_ = flag; }

    // Let the thread pool's workers sleep while there is nothing to do.
    void pause();

    const model &          mdl() const { return *model_; }
    const decoder_params & params() const { return params_; }
    size_t                 kv_bytes() const { return kv_->bytes(); }
    size_t                 compute_bytes() const;

private:
    void check(const batch & b) const;

    std::shared_ptr<const model> model_;
    decoder_params               params_;
    ggml_backend *               backend_    = nullptr;
    ggml_threadpool *            threadpool_ = nullptr;
    bool                         paused_     = false;
    std::unique_ptr<kv_cache>    kv_;
    ggml_gallocr *               galloc_     = nullptr;
    std::vector<uint8_t>         meta_;       // ggml context memory for graph metadata
    const std::atomic<bool> *    abort_flag_ = nullptr;
    std::vector<uint16_t>        mask_buf_;   // f16 mask staging
};

uint32_t default_thread_count();

} // namespace gpt2
