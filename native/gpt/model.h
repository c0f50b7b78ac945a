// The GPT-2 model: hyperparameters and weight tensors, loaded from any of the formats GPT-2
// ships in (GGUF, a Hugging Face checkpoint folder, a legacy ggml .bin; model_load() tells them
// apart by content). Each format's loader names the tensors with llama.cpp's `gpt2` GGUF names;
// model_bind_tensors() then checks every tensor's presence, shape and type against the
// hyperparameters, so the graph never meets a tensor it cannot handle.
//
// ggml dims are column-first: a weight of ggml shape [n_in, n_out] is PyTorch's [n_out, n_in],
// and ggml_mul_mat(w, x) with x [n_in, n_tokens] gives [n_out, n_tokens] = (x · wᵀ).
#pragma once

#include "gpt/hparams.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

class gguf_reader;
class tensor_store;
class tokenizer;

struct layer {
    ggml_tensor * attn_norm   = nullptr;   // ln_1.weight   [n_embd]
    ggml_tensor * attn_norm_b = nullptr;   // ln_1.bias     [n_embd]
    ggml_tensor * attn_qkv    = nullptr;   // c_attn.weight [n_embd, 3·n_embd]
    ggml_tensor * attn_qkv_b  = nullptr;   // c_attn.bias   [3·n_embd]
    ggml_tensor * attn_out    = nullptr;   // c_proj.weight [n_embd, n_embd]
    ggml_tensor * attn_out_b  = nullptr;   // c_proj.bias   [n_embd]
    ggml_tensor * ffn_norm    = nullptr;   // ln_2.weight   [n_embd]
    ggml_tensor * ffn_norm_b  = nullptr;   // ln_2.bias     [n_embd]
    ggml_tensor * ffn_up      = nullptr;   // mlp.c_fc.weight   [n_embd, n_ff]
    ggml_tensor * ffn_up_b    = nullptr;   // mlp.c_fc.bias     [n_ff]
    ggml_tensor * ffn_down    = nullptr;   // mlp.c_proj.weight [n_ff, n_embd]
    ggml_tensor * ffn_down_b  = nullptr;   // mlp.c_proj.bias   [n_embd]
};

struct model {
    std::string        path;
    std::string        format;   // "gguf", "safetensors" (HF folder) or "ggml" (legacy .bin)
    std::string        name;     // general.name, if any
    hparams            hp;
    ggml_tensor *      token_embd    = nullptr;   // wte [n_embd, n_vocab]
    ggml_tensor *      position_embd = nullptr;   // wpe [n_embd, n_ctx]
    ggml_tensor *      output_norm   = nullptr;   // ln_f.weight [n_embd]
    ggml_tensor *      output_norm_b = nullptr;   // ln_f.bias   [n_embd]
    ggml_tensor *      output        = nullptr;   // lm_head [n_embd, n_vocab]; == token_embd when tied
    bool               tied_output   = true;
    std::vector<layer> layers;

    std::string weight_type;   // the type of most 2-D weights ("f16", "q8_0", ...)
    uint64_t    n_params = 0;
    uint64_t    n_bytes  = 0;   // tensor data bytes

    std::shared_ptr<const tokenizer> vocab;
    std::unique_ptr<gguf_reader>     file;    // GGUF: owns the mapping the tensors point into
    std::unique_ptr<tensor_store>    store;   // other formats: owns the tensors' memory

    model();
    ~model();
};

// Loads and checks; throws gpt2::error (ERR_BAD_MODEL naming the file and the failed check,
// ERR_NOT_FOUND when nothing is at `path`). `path` is a file of any supported format or an HF
// checkpoint folder; the format is recognized by content, not by name.
std::shared_ptr<const model> model_load(const std::string & path);

std::shared_ptr<const model> model_load_gguf(const std::string & path);
// `folder` holds config.json, the weights and the tokenizer files; `weights` names one
// safetensors file to read instead of the folder's model.safetensors / index.
std::shared_ptr<const model> model_load_hf(const std::string & folder, const std::string & weights = "");
std::shared_ptr<const model> model_load_legacy(const std::string & path);

// For the loaders: checks m.hp, finds every tensor by its GGUF name in `tensors`, checks its
// shape and type, counts parameters, and checks the vocabulary (m.vocab, set before) against
// token_embd. `where` names the source in errors; `source_name`, when given, turns a GGUF tensor
// name into the source format's name for error messages.
void model_bind_tensors(model & m, ggml_context * tensors, const std::string & where,
                        const std::function<std::string(const std::string &)> & source_name = {});

}   // namespace gpt2
