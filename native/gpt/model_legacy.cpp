// Legacy ggml GPT-2 files (ggml's examples/gpt-2 format, see io/legacy_ggml_reader.h). Tensor
// data lies at unaligned offsets, so it is copied into our own buffer; 1-D tensors are widened
// to f32. The file stores no merges: the tokenizer recovers them from the vocabulary's order.
#include "gpt/model.h"

#include "io/legacy_ggml_reader.h"
#include "io/tensor_store.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include "ggml.h"

#include <cstring>
#include <map>

namespace gpt2 {

namespace {

// "model/h3/attn/c_attn/w" → "blk.3.attn_qkv.weight"; empty when the name is not a GPT-2 weight.
std::string gguf_name(const std::string & legacy, uint32_t n_layer) {
    static const std::map<std::string, std::string> top = {
        { "model/wte", "token_embd.weight" },     { "model/wpe", "position_embd.weight" }, { "model/lm_head", "output.weight" },
        { "model/ln_f/g", "output_norm.weight" }, { "model/ln_f/b", "output_norm.bias" },
    };
    static const std::map<std::string, std::string> block = {
        { "ln_1/g", "attn_norm.weight" },          { "ln_1/b", "attn_norm.bias" },
        { "attn/c_attn/w", "attn_qkv.weight" },    { "attn/c_attn/b", "attn_qkv.bias" },
        { "attn/c_proj/w", "attn_output.weight" }, { "attn/c_proj/b", "attn_output.bias" },
        { "ln_2/g", "ffn_norm.weight" },           { "ln_2/b", "ffn_norm.bias" },
        { "mlp/c_fc/w", "ffn_up.weight" },         { "mlp/c_fc/b", "ffn_up.bias" },
        { "mlp/c_proj/w", "ffn_down.weight" },     { "mlp/c_proj/b", "ffn_down.bias" },
    };
    if (auto it = top.find(legacy); it != top.end()) return it->second;
    if (legacy.rfind("model/h", 0) != 0) return "";
    const size_t slash = legacy.find('/', 7);
    if (slash == std::string::npos || slash == 7 || slash - 7 > 4 || legacy.find_first_not_of("0123456789", 7) != slash) return "";
    const uint32_t il = (uint32_t) std::stoul(legacy.substr(7, slash - 7));
    auto           it = block.find(legacy.substr(slash + 1));
    if (il >= n_layer || it == block.end()) return "";
    return "blk." + std::to_string(il) + "." + it->second;
}

}   // namespace

std::shared_ptr<const model> model_load_legacy(const std::string & path) {
    legacy_ggml_file       f(path);
    const legacy_hparams & lh = f.hparams();

    auto m       = std::make_shared<model>();
    m->path      = path;
    m->format    = "ggml";
    hparams & hp = m->hp;
    hp.n_ctx     = (uint32_t) lh.n_ctx;
    hp.n_embd    = (uint32_t) lh.n_embd;
    hp.n_head    = (uint32_t) lh.n_head;
    hp.n_layer   = (uint32_t) lh.n_layer;
    hp.n_ff      = 4 * hp.n_embd;
    hp.norm_eps  = 1e-5f;

    // Quantized blocks changed layout at ggml's quantization version 2; older files would load as noise.
    for (const auto & t : f.tensors()) {
        if (ggml_is_quantized((ggml_type) t.type) && lh.qnt_version < GGML_QNT_VERSION) {
            throw bad_model(path,
                            "tensor " + t.name + " uses ggml quantization format version " + std::to_string(lh.qnt_version) +
                                ", older than the supported " + std::to_string(GGML_QNT_VERSION) + "; convert the f16/f32 model instead");
        }
    }

    const legacy_tensor * wte  = f.find("model/wte");
    const legacy_tensor * head = f.find("model/lm_head");
    const bool head_is_copy    = wte && head && head->type == wte->type && head->nbytes == wte->nbytes && head->ne[0] == wte->ne[0] &&
        head->ne[1] == wte->ne[1] && std::memcmp(head->data, wte->data, wte->nbytes) == 0;

    m->store = std::make_unique<tensor_store>(f.tensors().size());
    std::vector<std::pair<ggml_tensor *, const legacy_tensor *>> copies;
    for (const auto & t : f.tensors()) {
        const std::string name = gguf_name(t.name, hp.n_layer);
        if (name.empty()) throw bad_model(path, "unexpected tensor " + t.name + " (not a GPT-2 weight)");
        if (&t == head && head_is_copy) continue;
        const ggml_type type = t.n_dims == 1 ? GGML_TYPE_F32 : (ggml_type) t.type;
        if (t.n_dims == 1 && t.type != GGML_TYPE_F32 && t.type != GGML_TYPE_F16) {
            throw bad_model(path, "tensor " + t.name + " is 1-D but has type " + ggml_type_name((ggml_type) t.type));
        }
        copies.emplace_back(m->store->add(name, type, t.ne[0], t.ne[1]), &t);
    }

    try {
        m->vocab = tokenizer::from_token_bytes(f.vocab());
    } catch (const std::exception & e) { throw bad_model(path, std::string("bad vocabulary: ") + e.what()); }
    model_bind_tensors(*m, m->store->ctx(), path);

    m->store->allocate();
    for (auto & [dst, src] : copies) {
        if (src->n_dims == 1 && src->type == GGML_TYPE_F16) {
            ggml_fp16_to_fp32_row((const ggml_fp16_t *) src->data, (float *) dst->data, src->ne[0]);
        } else {
            std::memcpy(dst->data, src->data, src->nbytes);
        }
    }
    return m;
}

}   // namespace gpt2
