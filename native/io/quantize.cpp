#include "io/quantize.h"

#include "io/gguf_reader.h"
#include "io/gguf_write.h"

#include "gguf.h"

#include <memory>

namespace gpt2 {

const std::vector<std::string> & quantize_type_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto & t : output_types()) v.emplace_back(t.name);
        return v;
    }();
    return names;
}

quantize_result quantize_gguf(const std::string & input, const std::string & output, const std::string & type_name,
                              const std::function<void(uint64_t, uint64_t)> & progress, const std::function<bool()> & cancelled) {
    const output_type & target = output_type_named(type_name);

    gguf_reader in(input);
    in.bind_data();
    const gguf_context * src = in.gguf();

    // All keys copied, the file type updated; 2-D tensors converted where their rows allow.
    struct gguf_deleter {
        void operator()(gguf_context * c) const { gguf_free(c); }
    };
    std::unique_ptr<gguf_context, gguf_deleter> dst(gguf_init_empty());
    gguf_set_kv(dst.get(), src);
    gguf_set_val_u32(dst.get(), "general.file_type", target.ftype);
    gguf_set_val_u32(dst.get(), "general.quantization_version", GGML_QNT_VERSION);

    quantize_result              res;
    std::vector<gguf_tensor_out> tensors;
    for (int64_t i = 0; i < gguf_get_n_tensors(src); ++i) {
        ggml_tensor * t  = in.tensor(gguf_get_tensor_name(src, i));
        ggml_type     nt = t->type;
        if (ggml_n_dims(t) == 2) {
            if (can_convert(t, target.type)) {
                nt = target.type;
                ++res.n_converted;
            } else ++res.n_kept;
        }
        tensors.push_back({ t, nt });
        res.bytes_in += ggml_nbytes(t);
    }
    res.bytes_out = gguf_write("quantization", output, dst.get(), tensors, progress, cancelled);
    return res;
}

}   // namespace gpt2
