// Writes a loaded GPT-2 model (any input format) as GGUF with llama.cpp's `gpt2` keys and
// tensor names, so that llama.cpp loads the result too; optionally converting the 2-D weights
// to another type on the way (f32, f16, bf16 or any quantization quantize accepts).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace gpt2 {

struct convert_result {
    std::string format_in;   // "gguf", "safetensors", "ggml"
    uint64_t    n_tensors   = 0;
    uint64_t    n_converted = 0;   // 2-D tensors written in another type
    uint64_t    bytes_out   = 0;   // tensor data bytes written
};

// `type` empty: every tensor keeps its type. Throws like model_load for the input, ERR_IO for
// the output, range_error for an unknown type, ERR_ABORTED when cancelled() turns true.
convert_result convert_model(const std::string & input, const std::string & output, const std::string & type,
                             const std::function<void(uint64_t done, uint64_t total)> & progress, const std::function<bool()> & cancelled);

}   // namespace gpt2
