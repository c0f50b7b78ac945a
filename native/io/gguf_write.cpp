#include "io/gguf_write.h"

#include "util/error.h"

#include "gguf.h"

#include <cstdio>
#include <cstring>
#include <memory>

namespace gpt2 {

namespace {

struct file_closer {
    void operator()(FILE * f) const {
        if (f) std::fclose(f);
    }
};

}   // namespace

const std::vector<output_type> & output_types() {
    static const std::vector<output_type> types = {
        { "f32", GGML_TYPE_F32, 0 },    { "f16", GGML_TYPE_F16, 1 },    { "bf16", GGML_TYPE_BF16, 32 }, { "q8_0", GGML_TYPE_Q8_0, 7 },
        { "q4_0", GGML_TYPE_Q4_0, 2 },  { "q4_1", GGML_TYPE_Q4_1, 3 },  { "q5_0", GGML_TYPE_Q5_0, 8 },  { "q5_1", GGML_TYPE_Q5_1, 9 },
        { "q2_K", GGML_TYPE_Q2_K, 10 }, { "q3_K", GGML_TYPE_Q3_K, 11 }, { "q4_K", GGML_TYPE_Q4_K, 14 }, { "q5_K", GGML_TYPE_Q5_K, 16 },
        { "q6_K", GGML_TYPE_Q6_K, 18 },
    };
    return types;
}

const output_type & output_type_named(const std::string & name) {
    for (const auto & t : output_types())
        if (name == t.name) return t;
    std::string list;
    for (const auto & t : output_types()) list += (list.empty() ? "" : ", ") + std::string(t.name);
    throw range_error("Expected one of " + list + " for type but received \"" + name + "\"");
}

bool can_convert(const ggml_tensor * t, ggml_type type) {
    return t->ne[0] % ggml_blck_size(type) == 0 && (t->type == GGML_TYPE_F32 || ggml_get_type_traits(t->type)->to_float);
}

uint64_t gguf_write(const std::string & job, const std::string & output, gguf_context * meta, const std::vector<gguf_tensor_out> & tensors,
                    const std::function<void(uint64_t, uint64_t)> & progress, const std::function<bool()> & cancelled) {
    uint64_t total = 0;
    for (const auto & t : tensors) {
        gguf_add_tensor(meta, t.src);
        if (t.type != t.src->type) gguf_set_tensor_type(meta, t.src->name, t.type);
        total += ggml_nbytes(t.src);
    }

    const std::string                  tmp = output + ".partial";
    std::unique_ptr<FILE, file_closer> f(std::fopen(tmp.c_str(), "wb"));
    if (!f) throw error(codes::io, output + ": cannot open for writing");
    auto abandon = [&](error e) {
        f.reset();
        std::remove(tmp.c_str());
        throw e;
    };
    if (!gguf_write_to_file_ptr(meta, f.get(), /*only_meta =*/true)) abandon(error(codes::io, output + ": cannot write the header"));

    const size_t         alignment = gguf_get_alignment(meta);
    std::vector<float>   f32;
    std::vector<uint8_t> out;
    uint64_t             done = 0, written = 0;
    for (const auto & [src, type] : tensors) {
        if (cancelled && cancelled()) abandon(error(codes::aborted, job + " aborted"));
        const uint8_t * data   = (const uint8_t *) src->data;
        size_t          nbytes = ggml_nbytes(src);
        if (type != src->type) {
            const int64_t n = ggml_nelements(src), n_per_row = src->ne[0], n_rows = n / n_per_row;
            f32.resize((size_t) n);
            if (src->type == GGML_TYPE_F32) std::memcpy(f32.data(), src->data, (size_t) n * sizeof(float));
            else ggml_get_type_traits(src->type)->to_float(src->data, f32.data(), n);
            out.resize((size_t) n_rows * ggml_row_size(type, n_per_row));
            nbytes = ggml_quantize_chunk(type, f32.data(), out.data(), 0, n_rows, n_per_row, nullptr);
            data   = out.data();
        }
        if (std::fwrite(data, 1, nbytes, f.get()) != nbytes) abandon(error(codes::io, output + ": write failed (disk full?)"));
        static const uint8_t zeros[64] = {};
        size_t               pad       = (alignment - nbytes % alignment) % alignment;
        while (pad > 0) {
            const size_t k = pad < sizeof(zeros) ? pad : sizeof(zeros);
            if (std::fwrite(zeros, 1, k, f.get()) != k) abandon(error(codes::io, output + ": write failed (disk full?)"));
            pad -= k;
        }
        written += nbytes;
        done += ggml_nbytes(src);
        if (progress) progress(done, total);
    }
    if (std::fflush(f.get()) != 0) abandon(error(codes::io, output + ": write failed (disk full?)"));
    f.reset();
    if (std::rename(tmp.c_str(), output.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw error(codes::io, output + ": cannot rename the finished file into place");
    }
    return written;
}

}   // namespace gpt2
