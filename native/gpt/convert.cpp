#include "gpt/convert.h"

#include "gpt/model.h"
#include "io/gguf_write.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include "gguf.h"

#include <memory>
#include <vector>

namespace gpt2 {

namespace {

struct gguf_deleter {
    void operator()(gguf_context * c) const { gguf_free(c); }
};

// tokenizer.ggml.* as llama.cpp's convert_hf_to_gguf.py writes them for GPT-2.
void set_tokenizer_keys(gguf_context * g, const tokenizer & tok) {
    const uint32_t            n = tok.n_vocab();
    std::vector<std::string>  texts(n);
    std::vector<const char *> ptrs(n);
    std::vector<int32_t>      types(n);
    for (uint32_t id = 0; id < n; ++id) {
        texts[id] = tok.token_text(id);
        ptrs[id]  = texts[id].c_str();
        types[id] = tok.is_special(id) ? 3 /* control */ : 1 /* normal */;
    }
    const std::vector<std::string> merges = tok.merges();
    std::vector<const char *>      mptrs;
    mptrs.reserve(merges.size());
    for (const auto & m : merges) mptrs.push_back(m.c_str());
    gguf_set_val_str(g, "tokenizer.ggml.model", "gpt2");
    gguf_set_val_str(g, "tokenizer.ggml.pre", "gpt-2");
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", ptrs.data(), ptrs.size());
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
    gguf_set_arr_str(g, "tokenizer.ggml.merges", mptrs.data(), mptrs.size());
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t) tok.eos_id());
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t) tok.eos_id());
}

}   // namespace

convert_result convert_model(const std::string & input, const std::string & output, const std::string & type_name,
                             const std::function<void(uint64_t, uint64_t)> & progress, const std::function<bool()> & cancelled) {
    const output_type * target = type_name.empty() ? nullptr : &output_type_named(type_name);
    auto                m      = model_load(input);

    // The tensors in llama.cpp's order; 2-D weights take the target type where their rows allow.
    std::vector<const ggml_tensor *> order = { m->token_embd, m->position_embd, m->output_norm, m->output_norm_b };
    if (!m->tied_output) order.push_back(m->output);
    for (const layer & L : m->layers) {
        for (const ggml_tensor * t : { L.attn_norm, L.attn_norm_b, L.attn_qkv, L.attn_qkv_b, L.attn_out, L.attn_out_b, L.ffn_norm,
                                       L.ffn_norm_b, L.ffn_up, L.ffn_up_b, L.ffn_down, L.ffn_down_b }) {
            order.push_back(t);
        }
    }
    convert_result res;
    res.format_in = m->format;
    std::vector<gguf_tensor_out> tensors;
    for (const ggml_tensor * t : order) {
        ggml_type type = t->type;
        if (target && ggml_n_dims(t) == 2 && can_convert(t, target->type)) type = target->type;
        if (type != t->type) ++res.n_converted;
        tensors.push_back({ t, type });
    }
    res.n_tensors = tensors.size();

    // general.file_type: the target's, or (keeping types) that of the dominant weight type.
    uint32_t ftype = target ? target->ftype : 0;
    if (!target)
        for (const auto & t : output_types())
            if (m->weight_type == t.name) ftype = t.ftype;

    std::unique_ptr<gguf_context, gguf_deleter> g(gguf_init_empty());
    const hparams &                             hp = m->hp;
    gguf_set_val_str(g.get(), "general.architecture", "gpt2");
    if (!m->name.empty()) gguf_set_val_str(g.get(), "general.name", m->name.c_str());
    gguf_set_val_u32(g.get(), "general.file_type", ftype);
    gguf_set_val_u32(g.get(), "general.quantization_version", GGML_QNT_VERSION);
    gguf_set_val_u32(g.get(), "gpt2.block_count", hp.n_layer);
    gguf_set_val_u32(g.get(), "gpt2.context_length", hp.n_ctx);
    gguf_set_val_u32(g.get(), "gpt2.embedding_length", hp.n_embd);
    gguf_set_val_u32(g.get(), "gpt2.feed_forward_length", hp.n_ff);
    gguf_set_val_u32(g.get(), "gpt2.attention.head_count", hp.n_head);
    gguf_set_val_f32(g.get(), "gpt2.attention.layer_norm_epsilon", hp.norm_eps);
    set_tokenizer_keys(g.get(), *m->vocab);

    res.bytes_out = gguf_write("conversion", output, g.get(), tensors, progress, cancelled);
    return res;
}

}   // namespace gpt2
