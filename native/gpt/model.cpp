#include "gpt/model.h"

#include "io/gguf_reader.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include "ggml.h"
#include "gguf.h"

#include <map>

namespace gpt2 {

model::~model() = default;

// Weight types ggml's CPU backend multiplies and gathers (get_rows) for us.
static bool is_supported_weight_type(ggml_type t) {
    switch (t) {
        case GGML_TYPE_F32:  case GGML_TYPE_F16:  case GGML_TYPE_BF16:
        case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1:
        case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
        case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K:
        case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
            return true;
        default:
            return false;
    }
}

namespace {

struct loader {
    gguf_reader & f;

    [[noreturn]] void fail(const std::string & what) const { throw bad_model(f.path(), what); }

    uint32_t require_u32(const char * key, uint32_t min, uint32_t max) const {
        auto v = f.get_uint(key);
        if (!v) fail(std::string("missing metadata ") + key);
        if (*v < min || *v > max) {
            fail(std::string("metadata ") + key + " = " + std::to_string(*v) + " is outside [" +
                 std::to_string(min) + ", " + std::to_string(max) + "]");
        }
        return (uint32_t) *v;
    }

    static std::string shape_str(const int64_t * ne, int n) {
        std::string s = "[";
        for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
        return s + "]";
    }

    // A tensor with exactly this shape; 1-D tensors (norms, biases) must be f32.
    ggml_tensor * tensor(const std::string & name, std::initializer_list<int64_t> shape, bool required = true) const {
        ggml_tensor * t = f.tensor(name);
        if (!t) {
            if (required) fail("missing tensor " + name);
            return nullptr;
        }
        int64_t want[GGML_MAX_DIMS] = { 1, 1, 1, 1 };
        int i = 0;
        for (int64_t d : shape) want[i++] = d;
        const int n = (int) shape.size();
        for (int d = 0; d < GGML_MAX_DIMS; ++d) {
            if (t->ne[d] != want[d]) {
                fail("tensor " + name + " has shape " + shape_str(t->ne, ggml_n_dims(t)) + ", expected " + shape_str(want, n));
            }
        }
        if (n == 1 && t->type != GGML_TYPE_F32) {
            fail("tensor " + name + " has type " + ggml_type_name(t->type) + ", expected f32 for a 1-D tensor");
        }
        if (n == 2 && !is_supported_weight_type(t->type)) {
            fail("tensor " + name + " has unsupported type " + ggml_type_name(t->type));
        }
        return t;
    }
};

} // namespace

std::shared_ptr<const model> model_load_gguf(const std::string & path) {
    auto m = std::make_shared<model>();
    m->path = path;
    m->file = std::make_unique<gguf_reader>(path);
    gguf_reader & f = *m->file;
    loader l { f };

    const auto arch = f.get_string("general.architecture");
    if (!arch) l.fail("missing metadata general.architecture (not a model file?)");
    if (*arch != "gpt2") l.fail("architecture is \"" + *arch + "\", expected \"gpt2\"");
    m->name = f.get_string("general.name").value_or("");

    hparams & hp = m->hp;
    hp.n_ctx   = l.require_u32("gpt2.context_length",   1, 1u << 20);
    hp.n_embd  = l.require_u32("gpt2.embedding_length", 1, 1u << 16);
    hp.n_layer = l.require_u32("gpt2.block_count",      1, 1024);
    hp.n_head  = l.require_u32("gpt2.attention.head_count", 1, hp.n_embd);
    hp.n_ff    = f.has("gpt2.feed_forward_length") ? l.require_u32("gpt2.feed_forward_length", 1, 1u << 20) : 4 * hp.n_embd;
    if (auto kv = f.get_uint("gpt2.attention.head_count_kv"); kv && *kv != hp.n_head) {
        l.fail("gpt2.attention.head_count_kv = " + std::to_string(*kv) + " differs from head_count = " +
               std::to_string(hp.n_head) + " (GPT-2 has no grouped-query attention)");
    }
    if (hp.n_embd % hp.n_head != 0) {
        l.fail("embedding_length " + std::to_string(hp.n_embd) + " is not divisible by head_count " + std::to_string(hp.n_head));
    }
    hp.norm_eps = f.get_float("gpt2.attention.layer_norm_epsilon").value_or(1e-5f);
    if (!(hp.norm_eps > 0.0f && hp.norm_eps < 1.0f)) l.fail("layer_norm_epsilon " + std::to_string(hp.norm_eps) + " is not in (0, 1)");

    ggml_tensor * wte = f.tensor("token_embd.weight");
    if (!wte) l.fail("missing tensor token_embd.weight");
    if (wte->ne[1] < 1 || wte->ne[1] > (1 << 24)) l.fail("token_embd.weight has " + std::to_string(wte->ne[1]) + " rows");
    hp.n_vocab = (uint32_t) wte->ne[1];

    const int64_t E = hp.n_embd, F = hp.n_ff, V = hp.n_vocab;
    m->token_embd    = l.tensor("token_embd.weight",    { E, V });
    m->position_embd = l.tensor("position_embd.weight", { E, hp.n_ctx });
    m->output_norm   = l.tensor("output_norm.weight",   { E });
    m->output_norm_b = l.tensor("output_norm.bias",     { E });
    m->output        = l.tensor("output.weight",        { E, V }, /*required=*/ false);
    m->tied_output   = m->output == nullptr;
    if (m->tied_output) m->output = m->token_embd;

    m->layers.resize(hp.n_layer);
    for (uint32_t i = 0; i < hp.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        layer & L = m->layers[i];
        L.attn_norm   = l.tensor(p + "attn_norm.weight",   { E });
        L.attn_norm_b = l.tensor(p + "attn_norm.bias",     { E });
        L.attn_qkv    = l.tensor(p + "attn_qkv.weight",    { E, 3 * E });
        L.attn_qkv_b  = l.tensor(p + "attn_qkv.bias",      { 3 * E });
        L.attn_out    = l.tensor(p + "attn_output.weight", { E, E });
        L.attn_out_b  = l.tensor(p + "attn_output.bias",   { E });
        L.ffn_norm    = l.tensor(p + "ffn_norm.weight",    { E });
        L.ffn_norm_b  = l.tensor(p + "ffn_norm.bias",      { E });
        L.ffn_up      = l.tensor(p + "ffn_up.weight",      { E, F });
        L.ffn_up_b    = l.tensor(p + "ffn_up.bias",        { F });
        L.ffn_down    = l.tensor(p + "ffn_down.weight",    { F, E });
        L.ffn_down_b  = l.tensor(p + "ffn_down.bias",      { E });
    }

    // Parameter count and the dominant weight type (by bytes of 2-D tensors).
    std::map<std::string, uint64_t> bytes_by_type;
    for (int64_t i = 0; i < f.n_tensors(); ++i) {
        ggml_tensor * t = f.tensor(gguf_get_tensor_name(f.gguf(), i));
        m->n_params += (uint64_t) ggml_nelements(t);
        m->n_bytes  += ggml_nbytes(t);
        if (ggml_n_dims(t) == 2) bytes_by_type[ggml_type_name(t->type)] += ggml_nbytes(t);
    }
    uint64_t best = 0;
    for (auto & [type, bytes] : bytes_by_type) if (bytes > best) { best = bytes; m->weight_type = type; }

    try {
        m->vocab = tokenizer::from_gguf(f.gguf());
    } catch (const error &) {
        throw;
    } catch (const std::exception & e) {
        l.fail(std::string("bad tokenizer metadata: ") + e.what());
    }
    if (m->vocab->n_vocab() != hp.n_vocab) {
        l.fail("tokenizer has " + std::to_string(m->vocab->n_vocab()) + " tokens but token_embd.weight has " +
               std::to_string(hp.n_vocab) + " rows");
    }

    f.bind_data();
    return m;
}

} // namespace gpt2
