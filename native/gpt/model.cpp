#include "gpt/model.h"

#include "io/gguf_reader.h"
#include "io/legacy_ggml_reader.h"
#include "io/safetensors_reader.h"
#include "io/tensor_store.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include "ggml.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

namespace gpt2 {

model::model()  = default;
model::~model() = default;

// Weight types ggml's CPU backend multiplies and gathers (get_rows) for us.
static bool is_supported_weight_type(ggml_type t) {
    switch (t) {
    case GGML_TYPE_F32:
    case GGML_TYPE_F16:
    case GGML_TYPE_BF16:
    case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q4_1:
    case GGML_TYPE_Q5_0:
    case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q2_K:
    case GGML_TYPE_Q3_K:
    case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K:
    case GGML_TYPE_Q6_K: return true;
    default: return false;
    }
}

namespace {

std::string shape_str(const int64_t * ne, int n) {
    std::string s = "[";
    for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

struct binder {
    ggml_context *                                          ctx;
    const std::string &                                     where;
    const std::function<std::string(const std::string &)> & source_name;

    std::string named(const std::string & gguf) const {
        if (!source_name) return gguf;
        const std::string s = source_name(gguf);
        return s == gguf ? s : s + " (" + gguf + ")";
    }

    [[noreturn]] void fail(const std::string & what) const { throw bad_model(where, what); }

    // A tensor with exactly this shape; 1-D tensors (norms, biases) must be f32.
    ggml_tensor * tensor(const std::string & name, std::initializer_list<int64_t> shape, bool required = true) const {
        ggml_tensor * t = ggml_get_tensor(ctx, name.c_str());
        if (!t) {
            if (required) fail("missing tensor " + named(name));
            return nullptr;
        }
        int64_t want[GGML_MAX_DIMS] = { 1, 1, 1, 1 };
        int     i                   = 0;
        for (int64_t d : shape) want[i++] = d;
        const int n = (int) shape.size();
        for (int d = 0; d < GGML_MAX_DIMS; ++d) {
            if (t->ne[d] != want[d]) {
                fail("tensor " + named(name) + " has shape " + shape_str(t->ne, ggml_n_dims(t)) + ", expected " + shape_str(want, n));
            }
        }
        if (n == 1 && t->type != GGML_TYPE_F32) {
            fail("tensor " + named(name) + " has type " + ggml_type_name(t->type) + ", expected f32 for a 1-D tensor");
        }
        if (n == 2 && !is_supported_weight_type(t->type)) {
            fail("tensor " + named(name) + " has unsupported type " + ggml_type_name(t->type));
        }
        return t;
    }
};

void check_hparams(const hparams & hp, const binder & b) {
    if (hp.n_head == 0 || hp.n_embd % hp.n_head != 0) {
        b.fail("embedding size " + std::to_string(hp.n_embd) + " is not divisible by the head count " + std::to_string(hp.n_head));
    }
    if (!(hp.norm_eps > 0.0f && hp.norm_eps < 1.0f)) b.fail("layer_norm_epsilon " + std::to_string(hp.norm_eps) + " is not in (0, 1)");
}

}   // namespace

void model_bind_tensors(model & m, ggml_context * ctx, const std::string & where,
                        const std::function<std::string(const std::string &)> & source_name) {
    binder    b{ ctx, where, source_name };
    hparams & hp = m.hp;
    check_hparams(hp, b);

    ggml_tensor * wte = ggml_get_tensor(ctx, "token_embd.weight");
    if (!wte) b.fail("missing tensor " + b.named("token_embd.weight"));
    if (wte->ne[1] < 1 || wte->ne[1] > (1 << 24)) b.fail("token_embd.weight has " + std::to_string(wte->ne[1]) + " rows");
    hp.n_vocab = (uint32_t) wte->ne[1];

    const int64_t E = hp.n_embd, F = hp.n_ff, V = hp.n_vocab;
    m.token_embd    = b.tensor("token_embd.weight", { E, V });
    m.position_embd = b.tensor("position_embd.weight", { E, hp.n_ctx });
    m.output_norm   = b.tensor("output_norm.weight", { E });
    m.output_norm_b = b.tensor("output_norm.bias", { E });
    m.output        = b.tensor("output.weight", { E, V }, /*required=*/false);
    m.tied_output   = m.output == nullptr;
    if (m.tied_output) m.output = m.token_embd;

    m.layers.resize(hp.n_layer);
    for (uint32_t i = 0; i < hp.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        layer &           L = m.layers[i];
        L.attn_norm         = b.tensor(p + "attn_norm.weight", { E });
        L.attn_norm_b       = b.tensor(p + "attn_norm.bias", { E });
        L.attn_qkv          = b.tensor(p + "attn_qkv.weight", { E, 3 * E });
        L.attn_qkv_b        = b.tensor(p + "attn_qkv.bias", { 3 * E });
        L.attn_out          = b.tensor(p + "attn_output.weight", { E, E });
        L.attn_out_b        = b.tensor(p + "attn_output.bias", { E });
        L.ffn_norm          = b.tensor(p + "ffn_norm.weight", { E });
        L.ffn_norm_b        = b.tensor(p + "ffn_norm.bias", { E });
        L.ffn_up            = b.tensor(p + "ffn_up.weight", { E, F });
        L.ffn_up_b          = b.tensor(p + "ffn_up.bias", { F });
        L.ffn_down          = b.tensor(p + "ffn_down.weight", { F, E });
        L.ffn_down_b        = b.tensor(p + "ffn_down.bias", { E });
    }

    // Parameter count and the dominant weight type (by bytes of 2-D tensors).
    std::map<std::string, uint64_t> bytes_by_type;
    for (ggml_tensor * t = ggml_get_first_tensor(ctx); t; t = ggml_get_next_tensor(ctx, t)) {
        m.n_params += (uint64_t) ggml_nelements(t);
        m.n_bytes += ggml_nbytes(t);
        if (ggml_n_dims(t) == 2) bytes_by_type[ggml_type_name(t->type)] += ggml_nbytes(t);
    }
    uint64_t best = 0;
    for (auto & [type, bytes] : bytes_by_type)
        if (bytes > best) {
            best          = bytes;
            m.weight_type = type;
        }

    if (!m.vocab) b.fail("no tokenizer");
    if (m.vocab->n_vocab() != hp.n_vocab) {
        b.fail("tokenizer has " + std::to_string(m.vocab->n_vocab()) + " tokens but token_embd.weight has " + std::to_string(hp.n_vocab) +
               " rows");
    }
}

namespace {

std::string first_bytes_hex(const uint8_t * p, size_t n) {
    static const char * hex = "0123456789abcdef";
    std::string         s;
    for (size_t i = 0; i < n; ++i) {
        s += hex[p[i] >> 4];
        s += hex[p[i] & 15];
        s += ' ';
    }
    if (!s.empty()) s.pop_back();
    return s;
}

}   // namespace

std::shared_ptr<const model> model_load(const std::string & path) {
    namespace fs = std::filesystem;
    std::error_code       ec;
    const fs::path        p  = fs::u8path(path);
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) throw error(codes::not_found, path + ": no such file or folder");
    if (fs::is_directory(st)) return model_load_hf(path);

    uint8_t head[16] = {};
    size_t  n        = 0;
    if (FILE * f = std::fopen(path.c_str(), "rb")) {
        n = std::fread(head, 1, sizeof head, f);
        std::fclose(f);
    } else {
        throw error(codes::io, path + ": cannot open file");
    }
    const uint64_t size  = (uint64_t) fs::file_size(p, ec);
    uint32_t       magic = 0;
    if (n >= 4) std::memcpy(&magic, head, 4);

    if (n >= 4 && std::memcmp(head, "GGUF", 4) == 0) return model_load_gguf(path);
    if (magic == legacy_magic()) return model_load_legacy(path);
    if (magic == 0x67676d66 || magic == 0x67676a74 || magic == 0x67676c61) {   // ggmf, ggjt, ggla
        throw bad_model(path,
                        "a pre-GGUF llama.cpp file (ggmf/ggjt); legacy GPT-2 files start with \"ggml\". "
                        "Convert it to GGUF with the llama.cpp release that wrote it");
    }
    if (looks_like_safetensors(head, n, size)) { return model_load_hf(fs::absolute(p, ec).parent_path().u8string(), path); }
    if ((n >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) || (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)) {
        throw bad_model(path,
                        "a PyTorch pickle checkpoint, which gpt2-node does not load (unpickling can run code). "
                        "Use the model's safetensors weights (model.safetensors) instead");
    }
    if (p.filename() == "config.json") return model_load_hf(fs::absolute(p, ec).parent_path().u8string());
    throw bad_model(
        path, "unknown format: not GGUF, safetensors or a legacy ggml file (first bytes: " + first_bytes_hex(head, n < 8 ? n : 8) + ")");
}

}   // namespace gpt2
