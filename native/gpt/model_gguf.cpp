// GGUF with llama.cpp's `gpt2` architecture keys. The tensors stay in the file's mapping.
#include "gpt/model.h"

#include "io/gguf_reader.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace gpt2 {

namespace {

uint32_t require_u32(const gguf_reader & f, const char * key, uint32_t min, uint32_t max) {
    auto v = f.get_uint(key);
    if (!v) throw bad_model(f.path(), std::string("missing metadata ") + key);
    if (*v < min || *v > max) {
        throw bad_model(f.path(),
                        std::string("metadata ") + key + " = " + std::to_string(*v) + " is outside [" + std::to_string(min) + ", " +
                            std::to_string(max) + "]");
    }
    return (uint32_t) *v;
}

}   // namespace

std::shared_ptr<const model> model_load_gguf(const std::string & path) {
    auto m          = std::make_shared<model>();
    m->path         = path;
    m->format       = "gguf";
    m->file         = std::make_unique<gguf_reader>(path);
    gguf_reader & f = *m->file;

    const auto arch = f.get_string("general.architecture");
    if (!arch) throw bad_model(path, "missing metadata general.architecture (not a model file?)");
    if (*arch != "gpt2") throw bad_model(path, "architecture is \"" + *arch + "\", expected \"gpt2\"");
    m->name = f.get_string("general.name").value_or("");

    hparams & hp = m->hp;
    hp.n_ctx     = require_u32(f, "gpt2.context_length", 1, 1u << 20);
    hp.n_embd    = require_u32(f, "gpt2.embedding_length", 1, 1u << 16);
    hp.n_layer   = require_u32(f, "gpt2.block_count", 1, 1024);
    hp.n_head    = require_u32(f, "gpt2.attention.head_count", 1, hp.n_embd);
    hp.n_ff      = f.has("gpt2.feed_forward_length") ? require_u32(f, "gpt2.feed_forward_length", 1, 1u << 20) : 4 * hp.n_embd;
    if (auto kv = f.get_uint("gpt2.attention.head_count_kv"); kv && *kv != hp.n_head) {
        throw bad_model(path,
                        "gpt2.attention.head_count_kv = " + std::to_string(*kv) +
                            " differs from head_count = " + std::to_string(hp.n_head) + " (GPT-2 has no grouped-query attention)");
    }
    hp.norm_eps = f.get_float("gpt2.attention.layer_norm_epsilon").value_or(1e-5f);

    try {
        m->vocab = tokenizer::from_gguf(f.gguf());
    } catch (const error & e) {
        // the tokenizer's checks name the key, not the file: add it, as loadTokenizer() does
        if (e.code() == codes::bad_model) throw bad_model(path, e.what());
        throw;
    } catch (const std::exception & e) { throw bad_model(path, std::string("bad tokenizer metadata: ") + e.what()); }
    model_bind_tensors(*m, f.meta(), path);
    f.bind_data();
    f.drop_metadata();   // everything needed is read: the tokenizer keeps its own compact tables
    return m;
}

}   // namespace gpt2
