// Named tensors in one host buffer that the loader fills itself: for formats whose bytes cannot
// be used where they lie (HF checkpoints store Conv1D weights transposed; legacy ggml files put
// tensor data at unaligned offsets). GGUF files are mapped instead (io/gguf_reader.h).
//
// Use: add() every tensor, allocate() once, then write each tensor's `data`.
#pragma once

#include "ggml.h"

#include <cstdint>
#include <string>

struct ggml_backend_buffer;

namespace gpt2 {

class tensor_store {
public:
    explicit tensor_store(size_t max_tensors);
    ~tensor_store();
    tensor_store(const tensor_store &)             = delete;
    tensor_store & operator=(const tensor_store &) = delete;

    // Before allocate(). Throws ERR_BAD_MODEL when the name is taken or too long.
    ggml_tensor * add(const std::string & name, ggml_type type, int64_t ne0, int64_t ne1 = 1);
    // One CPU buffer for all tensors; throws ERR_OUT_OF_MEMORY when it cannot be had.
    void allocate();

    ggml_context * ctx() const { return ctx_; }
    size_t         n_tensors() const { return n_; }

private:
    ggml_context *        ctx_    = nullptr;
    ggml_backend_buffer * buffer_ = nullptr;
    size_t                n_      = 0;
    size_t                max_    = 0;
};

}   // namespace gpt2
