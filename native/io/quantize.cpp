#include "io/quantize.h"

#include "io/gguf_reader.h"
#include "util/error.h"

#include "ggml.h"
#include "gguf.h"

#include <cstdio>
#include <cstring>
#include <memory>

namespace gpt2 {

namespace {

struct target_type { const char * name; ggml_type type; int ftype; };   // ftype: llama.h's llama_ftype

// The types ggml's CPU backend multiplies, as the model loader accepts them.
const target_type k_targets[] = {
    { "f32",  GGML_TYPE_F32,  0 },  { "f16",  GGML_TYPE_F16,  1 },  { "bf16", GGML_TYPE_BF16, 32 },
    { "q8_0", GGML_TYPE_Q8_0, 7 },  { "q4_0", GGML_TYPE_Q4_0, 2 },  { "q4_1", GGML_TYPE_Q4_1, 3 },
    { "q5_0", GGML_TYPE_Q5_0, 8 },  { "q5_1", GGML_TYPE_Q5_1, 9 },
    { "q2_K", GGML_TYPE_Q2_K, 10 }, { "q3_K", GGML_TYPE_Q3_K, 11 }, { "q4_K", GGML_TYPE_Q4_K, 14 },
    { "q5_K", GGML_TYPE_Q5_K, 16 }, { "q6_K", GGML_TYPE_Q6_K, 18 },
};

struct file_closer { void operator()(FILE * f) const { if (f) std::fclose(f); } };

} // namespace

const std::vector<std::string> & quantize_type_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto & t : k_targets) v.emplace_back(t.name);
        return v;
    }();
    return names;
}

quantize_result quantize_gguf(const std::string & input, const std::string & output, const std::string & type_name,
                              const std::function<void(uint64_t, uint64_t)> & progress,
                              const std::function<bool()> & cancelled) {
    const target_type * target = nullptr;
    for (const auto & t : k_targets) if (type_name == t.name) target = &t;
    if (!target) {
        std::string list;
        for (const auto & n : quantize_type_names()) list += (list.empty() ? "" : ", ") + n;
        throw range_error("Expected one of " + list + " for type but received \"" + type_name + "\"");
    }

    gguf_reader in(input);
    in.bind_data();
    const gguf_context * src = in.gguf();
    const int64_t n_tensors = gguf_get_n_tensors(src);

    // New metadata: all keys copied, file type updated; tensor infos with their new types.
    struct gguf_deleter { void operator()(gguf_context * c) const { gguf_free(c); } };
    std::unique_ptr<gguf_context, gguf_deleter> dst(gguf_init_empty());
    gguf_set_kv(dst.get(), src);
    gguf_set_val_u32(dst.get(), "general.file_type", (uint32_t) target->ftype);
    gguf_set_val_u32(dst.get(), "general.quantization_version", GGML_QNT_VERSION);

    quantize_result res;
    std::vector<ggml_type> new_types(n_tensors);
    for (int64_t i = 0; i < n_tensors; ++i) {
        ggml_tensor * t = in.tensor(gguf_get_tensor_name(src, i));
        ggml_type nt = t->type;
        if (ggml_n_dims(t) == 2) {
            if (t->ne[0] % ggml_blck_size(target->type) == 0 && (t->type == GGML_TYPE_F32 || ggml_get_type_traits(t->type)->to_float)) {
                nt = target->type;
                ++res.n_converted;
            } else {
                ++res.n_kept;
            }
        }
        new_types[i] = nt;
        gguf_add_tensor(dst.get(), t);
        if (nt != t->type) gguf_set_tensor_type(dst.get(), t->name, nt);
        res.bytes_in += ggml_nbytes(t);
    }

    const std::string tmp = output + ".partial";
    std::unique_ptr<FILE, file_closer> f(std::fopen(tmp.c_str(), "wb"));
    if (!f) throw error("ERR_IO", output + ": cannot open for writing");
    auto fail_io = [&](const std::string & what) {
        f.reset();
        std::remove(tmp.c_str());
        throw error("ERR_IO", output + ": " + what);
    };
    if (!gguf_write_to_file_ptr(dst.get(), f.get(), /*only_meta =*/ true)) fail_io("cannot write the header");

    const size_t alignment = gguf_get_alignment(dst.get());
    std::vector<float>   f32;
    std::vector<uint8_t> out;
    uint64_t done = 0;
    for (int64_t i = 0; i < n_tensors; ++i) {
        if (cancelled && cancelled()) {
            f.reset();
            std::remove(tmp.c_str());
            throw error("ERR_ABORTED", "quantization aborted");
        }
        ggml_tensor * t = in.tensor(gguf_get_tensor_name(src, i));
        const uint8_t * data = nullptr;
        size_t nbytes = ggml_nbytes(t);
        if (new_types[i] == t->type) {
            data = (const uint8_t *) t->data;
        } else {
            const int64_t n = ggml_nelements(t), n_per_row = t->ne[0], n_rows = n / n_per_row;
            f32.resize((size_t) n);
            if (t->type == GGML_TYPE_F32) std::memcpy(f32.data(), t->data, (size_t) n * sizeof(float));
            else ggml_get_type_traits(t->type)->to_float(t->data, f32.data(), n);
            out.resize((size_t) n_rows * ggml_row_size(new_types[i], n_per_row));
            nbytes = ggml_quantize_chunk(new_types[i], f32.data(), out.data(), 0, n_rows, n_per_row, nullptr);
            data = out.data();
        }
        if (std::fwrite(data, 1, nbytes, f.get()) != nbytes) fail_io("write failed (disk full?)");
        static const uint8_t zeros[64] = {};
        size_t pad = (alignment - nbytes % alignment) % alignment;
        while (pad > 0) {
            const size_t k = pad < sizeof(zeros) ? pad : sizeof(zeros);
            if (std::fwrite(zeros, 1, k, f.get()) != k) fail_io("write failed (disk full?)");
            pad -= k;
        }
        res.bytes_out += nbytes;
        done += ggml_nbytes(t);
        if (progress) progress(done, res.bytes_in);
    }
    if (std::fflush(f.get()) != 0) fail_io("write failed (disk full?)");
    f.reset();
    if (std::rename(tmp.c_str(), output.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw error("ERR_IO", output + ": cannot rename the finished file into place");
    }
    return res;
}

} // namespace gpt2
