// Hugging Face GPT2LMHeadModel checkpoint folders, as the hub serves them: config.json, the
// weights as model.safetensors or shards listed in model.safetensors.index.json, and the
// tokenizer as tokenizer.json or vocab.json + merges.txt.
//
// HF names map to llama.cpp's GGUF names. GPT-2's Conv1D layers store their weights as
// [in, out] (PyTorch order) where a Linear stores [out, in]; ggml_mul_mat wants the Linear
// layout, so the four Conv1D weights per block are transposed while copying. 1-D tensors are
// widened to f32. The attention-mask buffers of old checkpoints (attn.bias, attn.masked_bias)
// are not weights and are skipped.
#include "gpt/model.h"

#include "io/safetensors_reader.h"
#include "io/tensor_store.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/log.h"

#include "ggml.h"
#include "nlohmann/json.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace gpt2 {

namespace {

using json   = nlohmann::json;
namespace fs = std::filesystem;

std::string join_path(const std::string & folder, const std::string & name) { return files::join(folder, name); }
using files::is_file;

json read_json(const std::string & path) {
    std::string              text;
    const files::read_status st = files::read(path, text);
    if (st != files::read_status::ok)
        throw error(codes::io, path + (st == files::read_status::cannot_open ? ": cannot open file" : ": read error"));
    try {
        return json::parse(text);
    } catch (const json::exception & e) { throw bad_model(path, std::string("not valid JSON (") + e.what() + ")"); }
}

struct config_reader {
    const json &        j;
    const std::string & path;

    [[noreturn]] void fail(const std::string & what) const { throw bad_model(path, what); }

    // An integer key in [min, max]; `fallback` keys are tried in order (HF renamed some).
    uint32_t u32(std::initializer_list<const char *> keys, uint32_t min, uint32_t max, const uint32_t * dflt = nullptr) const {
        for (const char * k : keys) {
            if (!j.contains(k) || j[k].is_null()) continue;
            if (!j[k].is_number_integer()) fail(std::string(k) + " is " + j[k].dump() + ", expected an integer");
            const int64_t v = j[k].get<int64_t>();
            if (v < (int64_t) min || v > (int64_t) max) {
                fail(std::string(k) + " = " + std::to_string(v) + " is outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
            }
            return (uint32_t) v;
        }
        if (dflt) return *dflt;
        fail(std::string("missing ") + *keys.begin());
    }
    bool flag(const char * k, bool dflt) const {
        if (!j.contains(k) || j[k].is_null()) return dflt;
        if (!j[k].is_boolean()) fail(std::string(k) + " is " + j[k].dump() + ", expected true or false");
        return j[k].get<bool>();
    }
    std::string str(const char * k, const std::string & dflt) const {
        if (!j.contains(k) || j[k].is_null()) return dflt;
        if (!j[k].is_string()) fail(std::string(k) + " is " + j[k].dump() + ", expected a string");
        return j[k].get<std::string>();
    }
};

// How an HF tensor becomes a GGUF one.
struct mapping {
    std::string gguf;
    bool        conv1d;   // stored [in, out]: transpose
};

const std::map<std::string, std::pair<std::string, bool>> k_top = {
    { "wte.weight", { "token_embd.weight", false } },   { "wpe.weight", { "position_embd.weight", false } },
    { "ln_f.weight", { "output_norm.weight", false } }, { "ln_f.bias", { "output_norm.bias", false } },
    { "lm_head.weight", { "output.weight", false } },
};
// Per block "h.N.<key>"; an empty GGUF name marks buffers that are not weights.
const std::map<std::string, std::pair<std::string, bool>> k_block = {
    { "ln_1.weight", { "attn_norm.weight", false } },
    { "ln_1.bias", { "attn_norm.bias", false } },
    { "attn.c_attn.weight", { "attn_qkv.weight", true } },
    { "attn.c_attn.bias", { "attn_qkv.bias", false } },
    { "attn.c_proj.weight", { "attn_output.weight", true } },
    { "attn.c_proj.bias", { "attn_output.bias", false } },
    { "ln_2.weight", { "ffn_norm.weight", false } },
    { "ln_2.bias", { "ffn_norm.bias", false } },
    { "mlp.c_fc.weight", { "ffn_up.weight", true } },
    { "mlp.c_fc.bias", { "ffn_up.bias", false } },
    { "mlp.c_proj.weight", { "ffn_down.weight", true } },
    { "mlp.c_proj.bias", { "ffn_down.bias", false } },
    { "attn.bias", { "", false } },
    { "attn.masked_bias", { "", false } },
};

// False for names that are not GPT-2 tensors; an empty out.gguf for buffers to skip.
bool map_name(const std::string & hf, uint32_t n_layer, mapping & out) {
    if (auto it = k_top.find(hf); it != k_top.end()) {
        out = { it->second.first, it->second.second };
        return true;
    }
    if (hf.rfind("h.", 0) == 0) {
        const size_t dot = hf.find('.', 2);
        if (dot != std::string::npos && dot > 2 && dot - 2 <= 4 && hf.find_first_not_of("0123456789", 2) == dot) {
            const uint32_t il = (uint32_t) std::stoul(hf.substr(2, dot - 2));
            auto           it = k_block.find(hf.substr(dot + 1));
            if (il < n_layer && it != k_block.end()) {
                out = { it->second.first.empty() ? "" : "blk." + std::to_string(il) + "." + it->second.first, it->second.second };
                return true;
            }
        }
    }
    return false;
}

// The HF name of a GGUF tensor name, for error messages.
std::string hf_name_of(const std::string & gguf) {
    for (const auto & [hf, g] : k_top)
        if (g.first == gguf) return hf;
    if (gguf.rfind("blk.", 0) == 0) {
        const size_t dot = gguf.find('.', 4);
        if (dot != std::string::npos) {
            for (const auto & [hf, g] : k_block) {
                if (!g.first.empty() && g.first == gguf.substr(dot + 1)) return "h." + gguf.substr(4, dot - 4) + "." + hf;
            }
        }
    }
    return gguf;
}

ggml_type ggml_type_of(const safetensors_tensor & t, const std::string & path) {
    if (t.dtype == "F32") return GGML_TYPE_F32;
    if (t.dtype == "F16") return GGML_TYPE_F16;
    if (t.dtype == "BF16") return GGML_TYPE_BF16;
    throw bad_model(path, "tensor " + t.name + " has dtype " + t.dtype + "; GPT-2 weights must be F32, F16 or BF16");
}

// dst = src (n elements of `from`) widened to f32.
void to_f32(const safetensors_tensor & t, ggml_type from, float * dst, int64_t n) {
    if (from == GGML_TYPE_F32) std::memcpy(dst, t.data, (size_t) n * sizeof(float));
    else if (from == GGML_TYPE_F16) ggml_fp16_to_fp32_row((const ggml_fp16_t *) t.data, dst, n);
    else ggml_bf16_to_fp32_row((const ggml_bf16_t *) t.data, dst, n);
}

// dst[c][r] = src[r][c] for a rows × cols matrix of `esize`-byte elements, in cache-sized tiles.
void transpose(const uint8_t * src, uint8_t * dst, int64_t rows, int64_t cols, size_t esize) {
    constexpr int64_t B = 32;
    for (int64_t r0 = 0; r0 < rows; r0 += B) {
        for (int64_t c0 = 0; c0 < cols; c0 += B) {
            const int64_t r1 = std::min(rows, r0 + B), c1 = std::min(cols, c0 + B);
            for (int64_t r = r0; r < r1; ++r) {
                for (int64_t c = c0; c < c1; ++c) {
                    std::memcpy(dst + ((size_t) c * rows + r) * esize, src + ((size_t) r * cols + c) * esize, esize);
                }
            }
        }
    }
}

}   // namespace

std::shared_ptr<const model> model_load_hf(const std::string & folder, const std::string & weights) {
    const std::string config_path = join_path(folder, "config.json");
    if (!is_file(config_path)) {
        throw bad_model(weights.empty() ? folder : weights,
                        "no config.json " + std::string(weights.empty() ? "in the folder" : "beside it") +
                            " (a Hugging Face model folder needs config.json, the weights and the tokenizer files)");
    }
    const json config = read_json(config_path);
    if (!config.is_object()) throw bad_model(config_path, "not a JSON object");
    config_reader c{ config, config_path };

    // GPT-2 and only GPT-2: other architectures have other graphs.
    const std::string model_type = c.str("model_type", "");
    bool              gpt2_arch  = model_type == "gpt2";
    if (model_type.empty() && config.contains("architectures") && config["architectures"].is_array()) {
        for (const json & a : config["architectures"]) gpt2_arch |= a.is_string() && (a == "GPT2LMHeadModel" || a == "GPT2Model");
    }
    if (!gpt2_arch) c.fail("model_type is \"" + model_type + "\", expected \"gpt2\" (a GPT2LMHeadModel checkpoint)");
    const std::string act = c.str("activation_function", "gelu_new");
    if (act == "gelu") {
        log_write(log_level::warn, "gpt2-node",
                  config_path + ": activation_function \"gelu\" (erf) is computed with GPT-2's tanh approximation\n");
    } else if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu_fast") {
        c.fail("activation_function \"" + act + "\" is not supported (GPT-2 uses gelu_new)");
    }
    if (c.flag("scale_attn_by_inverse_layer_idx", false)) c.fail("scale_attn_by_inverse_layer_idx is not supported");
    if (!c.flag("scale_attn_weights", true)) c.fail("scale_attn_weights: false is not supported");
    if (c.flag("add_cross_attention", false)) c.fail("add_cross_attention (an encoder-decoder model) is not supported");

    auto m                    = std::make_shared<model>();
    m->path                   = folder;
    m->format                 = "safetensors";
    hparams & hp              = m->hp;
    hp.n_embd                 = c.u32({ "n_embd", "hidden_size" }, 1, 1u << 16);
    hp.n_layer                = c.u32({ "n_layer", "num_hidden_layers" }, 1, 1024);
    hp.n_head                 = c.u32({ "n_head", "num_attention_heads" }, 1, hp.n_embd);
    hp.n_ctx                  = c.u32({ "n_positions", "n_ctx", "max_position_embeddings" }, 1, 1u << 20);
    const uint32_t ff_default = 4 * hp.n_embd;
    hp.n_ff                   = c.u32({ "n_inner" }, 1, 1u << 20, &ff_default);
    if (config.contains("layer_norm_epsilon")) {
        if (!config["layer_norm_epsilon"].is_number()) c.fail("layer_norm_epsilon is not a number");
        hp.norm_eps = config["layer_norm_epsilon"].get<float>();
    }
    const bool     tied       = c.flag("tie_word_embeddings", true);
    const uint32_t vocab_size = c.u32({ "vocab_size" }, 1, 1u << 24);
    m->name                   = c.str("_name_or_path", fs::u8path(folder).filename().u8string());

    // The weight files.
    std::vector<std::string> files;
    if (!weights.empty()) {
        files.push_back(weights);
    } else if (const std::string index_path = join_path(folder, "model.safetensors.index.json"); is_file(index_path)) {
        const json index = read_json(index_path);
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
            throw bad_model(index_path, "no weight_map object");
        }
        std::set<std::string> shards;
        for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
            if (!it->is_string()) throw bad_model(index_path, "weight_map[\"" + it.key() + "\"] is not a file name");
            const std::string shard = it->get<std::string>();
            // a plain name in the folder: no separator, no drive prefix (std::filesystem would let
            // "D:x" leave the folder on Windows), no NUL (the path would end there)
            if (shard.empty() || shard.find_first_of(std::string_view("/\\:\0", 4)) != std::string::npos || shard == "." || shard == "..") {
                throw bad_model(index_path, "weight_map names \"" + shard + "\", which is not a file in the folder");
            }
            shards.insert(shard);
        }
        if (shards.empty()) throw bad_model(index_path, "weight_map is empty");
        for (const auto & s : shards) {
            const std::string p = join_path(folder, s);
            if (!is_file(p)) throw bad_model(index_path, "shard " + s + " is missing from the folder");
            files.push_back(p);
        }
    } else if (is_file(join_path(folder, "model.safetensors"))) {
        files.push_back(join_path(folder, "model.safetensors"));
    } else {
        for (const char * pickle : { "pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.ckpt" }) {
            if (is_file(join_path(folder, pickle))) {
                throw bad_model(folder,
                                std::string("has only PyTorch pickle weights (") + pickle +
                                    "), which gpt2-node does not load "
                                    "(unpickling can run code); download the repository's model.safetensors instead");
            }
        }
        throw bad_model(folder, "no weights: expected model.safetensors or model.safetensors.index.json");
    }
    std::vector<std::unique_ptr<safetensors_file>> shards;
    for (const auto & f : files) shards.push_back(std::make_unique<safetensors_file>(f));

    // Every tensor, by GGUF name, with its source.
    struct source {
        const safetensors_tensor * t;
        const std::string *        file;
        mapping                    map;
    };
    std::map<std::string, source> by_gguf;
    for (const auto & sf : shards) {
        for (const auto & t : sf->tensors()) {
            std::string name = t.name;
            if (name.rfind("transformer.", 0) == 0) name = name.substr(12);
            mapping map;
            if (!map_name(name, hp.n_layer, map)) throw bad_model(sf->path(), "unexpected tensor " + t.name + " (not a GPT-2 weight)");
            if (map.gguf.empty()) continue;
            if (!by_gguf.emplace(map.gguf, source{ &t, &sf->path(), map }).second) {
                throw bad_model(sf->path(), "tensor " + t.name + " appears twice");
            }
        }
    }
    if (!by_gguf.count("token_embd.weight")) throw bad_model(folder, "missing tensor wte.weight");
    const safetensors_tensor & wte = *by_gguf["token_embd.weight"].t;
    if (wte.shape.size() == 2 && wte.shape[0] != (int64_t) vocab_size) {
        c.fail("vocab_size " + std::to_string(vocab_size) + " differs from wte.weight's " + std::to_string(wte.shape[0]) + " rows");
    }
    // A tied checkpoint may still carry lm_head.weight (a copy of wte); keep one.
    if (auto it = by_gguf.find("output.weight"); it != by_gguf.end()) {
        const safetensors_tensor & head = *it->second.t;
        if (head.dtype == wte.dtype && head.shape == wte.shape && head.nbytes == wte.nbytes &&
            std::memcmp(head.data, wte.data, wte.nbytes) == 0) {
            by_gguf.erase(it);
        }
    } else if (!tied) {
        c.fail("tie_word_embeddings is false but there is no lm_head.weight");
    }

    // Declare the GGUF-shaped tensors, allocate, copy (transposing Conv1D weights).
    m->store = std::make_unique<tensor_store>(by_gguf.size());
    std::vector<std::pair<ggml_tensor *, const source *>> copies;
    for (const auto & [name, src] : by_gguf) {
        const safetensors_tensor & t    = *src.t;
        const ggml_type            type = ggml_type_of(t, *src.file);
        if (t.shape.size() == 1) {
            copies.emplace_back(m->store->add(name, GGML_TYPE_F32, t.shape[0]), &src);
        } else if (t.shape.size() == 2) {
            // PyTorch [rows, cols] is ggml [cols, rows]; a transposed Conv1D [in, out] becomes [in, out].
            const int64_t ne0 = src.map.conv1d ? t.shape[0] : t.shape[1];
            const int64_t ne1 = src.map.conv1d ? t.shape[1] : t.shape[0];
            copies.emplace_back(m->store->add(name, type, ne0, ne1), &src);
        } else {
            std::string shape;
            for (int64_t d : t.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
            throw bad_model(*src.file, "tensor " + t.name + " has shape [" + shape + "], expected 1 or 2 dimensions");
        }
    }

    try {
        m->vocab = tokenizer::from_file(folder);
    } catch (const error & e) {
        if (e.code() == codes::not_found) throw bad_model(folder, "no tokenizer (tokenizer.json, or vocab.json and merges.txt)");
        throw;
    } catch (const std::exception & e) { throw bad_model(folder, std::string("bad tokenizer: ") + e.what()); }
    // Shapes and types are checked before a byte is copied.
    model_bind_tensors(*m, m->store->ctx(), folder, hf_name_of);

    m->store->allocate();
    std::vector<float> f32;
    for (auto & [dst, src] : copies) {
        const safetensors_tensor & t    = *src->t;
        const ggml_type            from = ggml_type_of(t, *src->file);
        if (t.shape.size() == 1) {
            to_f32(t, from, (float *) dst->data, t.shape[0]);
        } else if (src->map.conv1d) {
            transpose(t.data, (uint8_t *) dst->data, t.shape[0], t.shape[1], ggml_type_size(from));
        } else {
            std::memcpy(dst->data, t.data, t.nbytes);
        }
    }
    return m;
}

}   // namespace gpt2
