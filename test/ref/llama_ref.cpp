// gpt2-llama-ref: the independent implementation the parity tests compare gpt2-node against.
//
// It is libllama's own gpt2 model (the llama.cpp tree vendored at the same pin, on the same
// ggml) driven through llama.h only: it loads a GGUF, decodes one prompt as one batch and writes
// the logits, optionally followed by a greedy continuation. It shares no code with native/.
// Test-only: built on demand (scripts/build-ref-tool.mjs), never shipped.
//
//   gpt2-llama-ref --model PATH --tokens 1,2,3 --out FILE
//                  [--all-logits] [--greedy N] [--threads N] [--ctx N]
//                  [--kv-type f32|f16] [--flash-attn off|on|auto] [--repack on|off]
//                  [--ubatch N] [--gpu-layers N] [--verbose]
//
// --ubatch N splits the prompt's forward passes into micro-batches of N tokens (default: one for
// the whole prompt), to match an engine that prefills in chunks.
//
// --repack off keeps weights in their file layout (llama_model_params.use_extra_bufts = false);
// llama.cpp's default repacks q4_0 / q4_K / iq4_nl weights into interleaved layouts with their
// own kernels, which gpt2-node does not (yet).
//
// Output file, little-endian:
//   u32 n_vocab, u32 n_rows,
//   f32 logits[n_rows][n_vocab]    one row per prompt position (--all-logits) or the last only,
//   u32 greedy[N]                  with --greedy N: argmax continuation (lowest id on ties),
//                                  N tokens, not stopped at end-of-text.
//
// Defaults are chosen to make this the most precise reading of the model, not the fastest:
// an f32 KV cache and no flash attention (llama.cpp's own defaults are an f16 cache and
// flash attention when available, both of which round activations to f16).
// Exit status: 0 ok, 1 bad arguments or failure (message on stderr). Silent on success.

#include "llama.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct ref_args {
    std::string           model;
    std::string           out;
    std::vector<int32_t>  tokens;
    bool                  all_logits = false;
    int32_t               greedy     = 0;
    int32_t               threads    = 2;
    int32_t               ctx        = 0;   // 0 = just enough for prompt + continuation
    ggml_type             kv_type    = GGML_TYPE_F32;
    llama_flash_attn_type flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    bool                  repack     = true;
    int32_t               ubatch     = 0;   // 0 = the whole prompt
    int32_t               gpu_layers = 0;   // libllama's n_gpu_layers (a GPU build; 0: the CPU)
    bool                  verbose    = false;
};

void log_none(ggml_log_level, const char *, void *) {}

[[noreturn]] void fail(const char * fmt, const char * detail = "") {
    std::fprintf(stderr, "gpt2-llama-ref: ");
    std::fprintf(stderr, fmt, detail);
    std::fprintf(stderr, "\n");
    std::exit(1);
}

// parse a decimal integer in [lo, hi] or fail with the option's name
int64_t parse_int(const char * opt, const char * s, int64_t lo, int64_t hi) {
    if (s == nullptr || *s == '\0') fail("expected an integer for %s", opt);
    char * end        = nullptr;
    errno             = 0;
    const long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) fail("bad integer for %s", opt);
    return v;
}

std::vector<int32_t> parse_tokens(const char * s) {
    std::vector<int32_t> out;
    std::string          cur;
    for (const char * p = s;; ++p) {
        if (*p == ',' || *p == '\0') {
            out.push_back((int32_t) parse_int("--tokens", cur.c_str(), 0, INT32_MAX));
            cur.clear();
            if (*p == '\0') break;
        } else {
            cur.push_back(*p);
        }
    }
    return out;
}

ref_args parse_args(int argc, char ** argv) {
    ref_args a;
    for (int i = 1; i < argc; ++i) {
        const std::string opt   = argv[i];
        auto              value = [&]() -> const char * {
            if (i + 1 >= argc) fail("missing value for %s", argv[i]);
            return argv[++i];
        };
        if (opt == "--model") a.model = value();
        else if (opt == "--out") a.out = value();
        else if (opt == "--tokens") a.tokens = parse_tokens(value());
        else if (opt == "--all-logits") a.all_logits = true;
        else if (opt == "--greedy") a.greedy = (int32_t) parse_int("--greedy", value(), 0, 1 << 20);
        else if (opt == "--threads") a.threads = (int32_t) parse_int("--threads", value(), 1, 512);
        else if (opt == "--ctx") a.ctx = (int32_t) parse_int("--ctx", value(), 1, 1 << 20);
        else if (opt == "--verbose") a.verbose = true;
        else if (opt == "--kv-type") {
            const std::string v = value();
            if (v == "f32") a.kv_type = GGML_TYPE_F32;
            else if (v == "f16") a.kv_type = GGML_TYPE_F16;
            else fail("--kv-type must be f32 or f16 but is %s", v.c_str());
        } else if (opt == "--flash-attn") {
            const std::string v = value();
            if (v == "off") a.flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED;
            else if (v == "on") a.flash_attn = LLAMA_FLASH_ATTN_TYPE_ENABLED;
            else if (v == "auto") a.flash_attn = LLAMA_FLASH_ATTN_TYPE_AUTO;
            else fail("--flash-attn must be off, on or auto but is %s", v.c_str());
        } else if (opt == "--ubatch") {
            a.ubatch = (int32_t) parse_int("--ubatch", value(), 1, 1 << 20);
        } else if (opt == "--gpu-layers") {
            a.gpu_layers = (int32_t) parse_int("--gpu-layers", value(), 0, 1 << 20);
        } else if (opt == "--repack") {
            const std::string v = value();
            if (v == "on") a.repack = true;
            else if (v == "off") a.repack = false;
            else fail("--repack must be on or off but is %s", v.c_str());
        } else {
            fail("unknown option %s", opt.c_str());
        }
    }
    if (a.model.empty()) fail("--model is required%s");
    if (a.out.empty()) fail("--out is required%s");
    if (a.tokens.empty()) fail("--tokens is required (at least one id)%s");
    return a;
}

// index of the largest value; the lowest index wins ties
uint32_t argmax(const float * row, int32_t n) {
    int32_t best = 0;
    for (int32_t j = 1; j < n; ++j) {
        if (row[j] > row[best]) best = j;
    }
    return (uint32_t) best;
}

// decode tokens[0..n) at positions pos0.. in sequence 0; outputs as flagged by want_output(i)
template <typename F> void decode(llama_context * ctx, const int32_t * tokens, int32_t n, int32_t pos0, F want_output) {
    llama_batch batch = llama_batch_init(n, 0, 1);
    for (int32_t i = 0; i < n; ++i) {
        batch.token[i]     = tokens[i];
        batch.pos[i]       = pos0 + i;
        batch.n_seq_id[i]  = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i]    = want_output(i) ? 1 : 0;
    }
    batch.n_tokens   = n;
    const int32_t rc = llama_decode(ctx, batch);
    llama_batch_free(batch);
    if (rc != 0) {
        const std::string code = std::to_string(rc);
        fail("llama_decode failed with status %s", code.c_str());
    }
}

void write_all(FILE * f, const void * data, size_t size, const std::string & path) {
    if (size != 0 && std::fwrite(data, 1, size, f) != size) fail("cannot write %s", path.c_str());
}

}   // namespace

int main(int argc, char ** argv) {
    const ref_args args     = parse_args(argc, argv);
    const int32_t  n_prompt = (int32_t) args.tokens.size();

    if (!args.verbose) llama_log_set(log_none, nullptr);
    llama_backend_init();

    llama_model_params mparams = llama_model_default_params();
    mparams.load_mode          = LLAMA_LOAD_MODE_MMAP;
    mparams.n_gpu_layers       = args.gpu_layers;   // 0 (the default): the CPU backend, as the parity tests compare
    mparams.use_extra_bufts    = args.repack;
    llama_model * model        = llama_model_load_from_file(args.model.c_str(), mparams);
    if (model == nullptr) fail("cannot load model %s", args.model.c_str());

    const llama_vocab * vocab   = llama_model_get_vocab(model);
    const int32_t       n_vocab = llama_vocab_n_tokens(vocab);
    for (int32_t t : args.tokens) {
        if (t >= n_vocab) {
            const std::string id = std::to_string(t);
            fail("token id %s is not below the vocabulary size", id.c_str());
        }
    }

    // positions past the model's trained context have no position embedding
    const int32_t n_needed = n_prompt + (args.greedy > 0 ? args.greedy - 1 : 0);
    if (n_needed > llama_model_n_ctx_train(model)) {
        const std::string n = std::to_string(llama_model_n_ctx_train(model));
        fail("the prompt plus the continuation is longer than the model's context length %s", n.c_str());
    }
    const int32_t n_ctx = args.ctx > 0 ? args.ctx : n_needed;
    if (n_ctx < n_needed) fail("--ctx is smaller than the prompt plus the continuation%s");

    llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx                = (uint32_t) n_ctx;
    cparams.n_batch              = (uint32_t) n_prompt;   // the whole prompt is one batch and one ubatch
    cparams.n_ubatch             = (uint32_t) (args.ubatch > 0 && args.ubatch < n_prompt ? args.ubatch : n_prompt);
    cparams.n_seq_max            = 1;
    cparams.n_threads            = args.threads;
    cparams.n_threads_batch      = args.threads;
    cparams.type_k               = args.kv_type;
    cparams.type_v               = args.kv_type;
    cparams.flash_attn_type      = args.flash_attn;
    cparams.no_perf              = true;
    llama_context * ctx          = llama_init_from_model(model, cparams);
    if (ctx == nullptr) fail("cannot create a context for %s", args.model.c_str());

    const bool all = args.all_logits;
    decode(ctx, args.tokens.data(), n_prompt, 0, [&](int32_t i) { return all || i == n_prompt - 1; });

    const int32_t      n_rows = all ? n_prompt : 1;
    std::vector<float> logits((size_t) n_rows * (size_t) n_vocab);
    for (int32_t r = 0; r < n_rows; ++r) {
        const float * row = llama_get_logits_ith(ctx, all ? r : n_prompt - 1);
        if (row == nullptr) fail("no logits for a prompt position%s");
        std::memcpy(logits.data() + (size_t) r * n_vocab, row, sizeof(float) * (size_t) n_vocab);
    }

    // greedy continuation: the first token comes from the prompt's last row, each next one from
    // decoding the previous token alone
    std::vector<uint32_t> greedy;
    if (args.greedy > 0) {
        greedy.push_back(argmax(logits.data() + (size_t) (n_rows - 1) * n_vocab, n_vocab));
        for (int32_t k = 1; k < args.greedy; ++k) {
            const int32_t tok = (int32_t) greedy.back();
            decode(ctx, &tok, 1, n_prompt + k - 1, [](int32_t) { return true; });
            const float * row = llama_get_logits_ith(ctx, -1);
            if (row == nullptr) fail("no logits for a generated position%s");
            greedy.push_back(argmax(row, n_vocab));
        }
    }

    FILE * f = std::fopen(args.out.c_str(), "wb");
    if (f == nullptr) fail("cannot open %s for writing", args.out.c_str());
    const uint32_t header[2] = { (uint32_t) n_vocab, (uint32_t) n_rows };
    write_all(f, header, sizeof(header), args.out);
    write_all(f, logits.data(), sizeof(float) * logits.size(), args.out);
    write_all(f, greedy.data(), sizeof(uint32_t) * greedy.size(), args.out);
    if (std::fclose(f) != 0) fail("cannot write %s", args.out.c_str());

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
