// Writing GGUF files: the tensor-type table shared by quantize and convert, and a streaming
// writer that converts each tensor to its output type as it goes (memory stays at one tensor's
// worth) and renames the finished file into place (a failed or aborted write leaves nothing).
#pragma once

#include "ggml.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

struct gguf_context;

namespace gpt2 {

// A GGUF output type: ggml's type and llama.h's llama_ftype for general.file_type.
struct output_type {
    const char * name;
    ggml_type    type;
    uint32_t     ftype;
};

// The types ggml's CPU backend multiplies, as the model loader accepts them, lower case as ggml
// names them ("q4_K" keeps ggml's K).
const std::vector<output_type> & output_types();
// Throws range_error listing the choices for an unknown name.
const output_type & output_type_named(const std::string & name);

struct gguf_tensor_out {
    const ggml_tensor * src;    // host data
    ggml_type           type;   // output type (src->type: copied as is)
};

// Whether a 2-D tensor can be written as `type`: rows must be whole blocks, and the source
// must be convertible to f32.
bool can_convert(const ggml_tensor * t, ggml_type type);

// `meta` holds the keys; the tensors are added here in order with their output types.
// progress(done, total) after each tensor, in source bytes; cancelled() → ERR_ABORTED
// ("<job> aborted"). Returns the bytes of tensor data written. Throws ERR_IO for the output.
uint64_t gguf_write(const std::string & job, const std::string & output, gguf_context * meta, const std::vector<gguf_tensor_out> & tensors,
                    const std::function<void(uint64_t done, uint64_t total)> & progress, const std::function<bool()> & cancelled);

}   // namespace gpt2
