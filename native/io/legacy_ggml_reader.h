// Reads a legacy ggml GPT-2 file, the format of ggml's examples/gpt-2 (before GGUF):
//
//   u32 magic 0x67676d6c ("ggml")
//   i32 n_vocab, n_ctx, n_embd, n_head, n_layer, ftype (+ 1000 × quantization version)
//   i32 n_vocab again, then n_vocab × (u32 length, bytes): each token's raw bytes, by id
//   tensors until the end of the file, each:
//     i32 n_dims, i32 name length, i32 ggml type, i32 ne[n_dims], name bytes, data
//
// Tensor names are "model/wte", "model/h0/attn/c_attn/w", ...; shapes are in ggml order (the
// converter already transposed PyTorch's Conv1D weights). Every length is checked against the
// bytes left in the file before anything is allocated for it.
#pragma once

#include "io/mapped_file.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace gpt2 {

struct legacy_tensor {
    std::string     name;
    int32_t         type   = 0;          // ggml_type id as stored
    int64_t         ne[2]  = { 1, 1 };   // ggml order
    int32_t         n_dims = 0;
    const uint8_t * data   = nullptr;   // unaligned
    uint64_t        nbytes = 0;
};

struct legacy_hparams {
    int32_t n_vocab = 0, n_ctx = 0, n_embd = 0, n_head = 0, n_layer = 0;
    int32_t ftype       = 0;   // without the quantization version
    int32_t qnt_version = 0;
};

// 0x67676d6c, the first 4 bytes of a legacy file read as a little-endian u32 ("lmgg" on disk).
constexpr uint32_t legacy_magic() { return 0x67676d6c; }

class legacy_ggml_file {
public:
    explicit legacy_ggml_file(const std::string & path);   // throws ERR_BAD_MODEL / ERR_NOT_FOUND / ERR_IO
    const std::string &                path() const { return file_.path(); }
    const legacy_hparams &             hparams() const { return hp_; }
    const std::vector<std::string> &   vocab() const { return vocab_; }   // raw token bytes, by id
    const std::vector<legacy_tensor> & tensors() const { return tensors_; }
    const legacy_tensor *              find(const std::string & name) const;

private:
    mapped_file                             file_;
    legacy_hparams                          hp_;
    std::vector<std::string>                vocab_;
    std::vector<legacy_tensor>              tensors_;
    std::unordered_map<std::string, size_t> index_;
};

}   // namespace gpt2
