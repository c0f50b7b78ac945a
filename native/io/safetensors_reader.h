// Reads a safetensors file (Hugging Face's weight format): an 8-byte little-endian header
// length, a JSON header mapping tensor names to {dtype, shape, data_offsets}, then the bytes.
// Every field is checked before use: the header length against the file size, each shape's
// element count against its byte range, each byte range against the data section. Tensor bytes
// stay in a read-only mapping of the file.
//
// Not GPT-2 specific: the name mapping and transposes live in gpt/model_hf.cpp.
#pragma once

#include "io/mapped_file.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gpt2 {

struct safetensors_tensor {
    std::string          name;
    std::string          dtype;   // "F32", "F16", "BF16", "I64", "BOOL", ...
    std::vector<int64_t> shape;   // PyTorch order (row-major, last dim fastest)
    const uint8_t *      data   = nullptr;
    uint64_t             nbytes = 0;
};

class safetensors_file {
public:
    explicit safetensors_file(const std::string & path);   // throws ERR_BAD_MODEL / ERR_NOT_FOUND / ERR_IO
    const std::string &                     path() const { return file_.path(); }
    const std::vector<safetensors_tensor> & tensors() const { return tensors_; }
    const safetensors_tensor *              find(const std::string & name) const;

private:
    mapped_file                     file_;
    std::vector<safetensors_tensor> tensors_;
};

// The first bytes of a safetensors file: a plausible header length followed by '{'.
bool looks_like_safetensors(const uint8_t * head, size_t n, uint64_t file_size);

}   // namespace gpt2
