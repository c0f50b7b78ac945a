// Rewrites a GGUF model with its 2-D weight tensors converted to another ggml type (f32, f16,
// bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K .. q6_K), everything else copied unchanged.
// Streams tensor by tensor: memory stays at one tensor's worth, whatever the model's size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gpt2 {

struct quantize_result {
    uint64_t n_converted = 0;   // tensors converted to the target type
    uint64_t n_kept      = 0;   // 2-D tensors kept as they were (rows not a multiple of the block size)
    uint64_t bytes_in    = 0;
    uint64_t bytes_out   = 0;
};

// Target type names accepted by quantize_gguf, lower case as ggml names them ("q4_K" keeps ggml's K).
const std::vector<std::string> & quantize_type_names();

// Throws gpt2::error: ERR_BAD_MODEL (input), ERR_IO (output), range_error (unknown type).
// `progress(done, total)` is called after each tensor (bytes of input processed).
quantize_result quantize_gguf(const std::string & input, const std::string & output, const std::string & type,
                              const std::function<void(uint64_t done, uint64_t total)> & progress, const std::function<bool()> & cancelled);

}   // namespace gpt2
