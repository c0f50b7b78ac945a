#include "io/legacy_ggml_reader.h"

#include "util/error.h"

#include "ggml.h"

#include <cstring>

namespace gpt2 {

namespace {

// A bounds-checked cursor over the mapped bytes.
struct cursor {
    const uint8_t *     p;
    uint64_t            left;
    const std::string & path;

    [[noreturn]] void fail(const std::string & what) const { throw bad_model(path, what); }

    const uint8_t * take(uint64_t n, const char * what) {
        if (n > left) fail(std::string("file ends inside ") + what + " (truncated?)");
        const uint8_t * q = p;
        p += n;
        left -= n;
        return q;
    }
    int32_t i32(const char * what) {
        int32_t v;
        std::memcpy(&v, take(4, what), 4);
        return v;
    }
};

}   // namespace

legacy_ggml_file::legacy_ggml_file(const std::string & path) : file_(path) {
    cursor c{ file_.data(), file_.size(), file_.path() };
    if (file_.size() < 4) c.fail("not a legacy ggml file (too short)");
    uint32_t magic;
    std::memcpy(&magic, c.take(4, "the magic"), 4);
    if (magic != legacy_magic()) c.fail("not a legacy ggml file (bad magic)");

    hp_.n_vocab         = c.i32("the hyperparameters");
    hp_.n_ctx           = c.i32("the hyperparameters");
    hp_.n_embd          = c.i32("the hyperparameters");
    hp_.n_head          = c.i32("the hyperparameters");
    hp_.n_layer         = c.i32("the hyperparameters");
    const int32_t ftype = c.i32("the hyperparameters");
    if (ftype < 0) c.fail("ftype " + std::to_string(ftype) + " is negative");
    hp_.ftype       = ftype % 1000;   // GGML_QNT_VERSION_FACTOR
    hp_.qnt_version = ftype / 1000;
    auto positive   = [&](int32_t v, const char * name, int32_t max) {
        if (v < 1 || v > max) c.fail(std::string(name) + " = " + std::to_string(v) + " is outside [1, " + std::to_string(max) + "]");
    };
    positive(hp_.n_vocab, "n_vocab", 1 << 24);
    positive(hp_.n_ctx, "n_ctx", 1 << 20);
    positive(hp_.n_embd, "n_embd", 1 << 16);
    positive(hp_.n_head, "n_head", hp_.n_embd);
    positive(hp_.n_layer, "n_layer", 1024);

    const int32_t n_vocab = c.i32("the vocabulary");
    if (n_vocab != hp_.n_vocab)
        c.fail("vocabulary has " + std::to_string(n_vocab) + " tokens but n_vocab is " + std::to_string(hp_.n_vocab));
    // each token needs at least its 4-byte length: bound the reservation by what the file holds
    if ((uint64_t) n_vocab > c.left / 4) c.fail("file ends inside the vocabulary (truncated?)");
    vocab_.reserve((size_t) n_vocab);
    for (int32_t i = 0; i < n_vocab; ++i) {
        uint32_t len;
        std::memcpy(&len, c.take(4, "the vocabulary"), 4);
        if (len > 4096) c.fail("token " + std::to_string(i) + " is " + std::to_string(len) + " bytes long");
        const uint8_t * s = c.take(len, "the vocabulary");
        vocab_.emplace_back((const char *) s, len);
    }

    while (c.left > 0) {
        legacy_tensor t;
        t.n_dims               = c.i32("a tensor header");
        const int32_t name_len = c.i32("a tensor header");
        t.type                 = c.i32("a tensor header");
        if (t.n_dims < 1 || t.n_dims > 2)
            c.fail("tensor #" + std::to_string(tensors_.size()) + " has " + std::to_string(t.n_dims) + " dimensions");
        if (name_len < 1 || name_len > 256)
            c.fail("tensor #" + std::to_string(tensors_.size()) + " has a name of " + std::to_string(name_len) + " bytes");
        if (t.type < 0 || t.type >= GGML_TYPE_COUNT || ggml_get_type_traits((ggml_type) t.type)->blck_size == 0) {
            c.fail("tensor #" + std::to_string(tensors_.size()) + " has unknown type " + std::to_string(t.type));
        }
        for (int d = 0; d < t.n_dims; ++d) {
            t.ne[d] = c.i32("a tensor header");
            if (t.ne[d] < 1) c.fail("tensor #" + std::to_string(tensors_.size()) + " has dimension " + std::to_string(t.ne[d]));
        }
        t.name.assign((const char *) c.take((uint64_t) name_len, "a tensor name"), (size_t) name_len);
        const ggml_type type = (ggml_type) t.type;
        if (t.ne[0] % ggml_blck_size(type) != 0) {
            c.fail("tensor " + t.name + ": row of " + std::to_string(t.ne[0]) + " is not a multiple of " + ggml_type_name(type) +
                   "'s block size");
        }
        // ne < 2^31 each: the row size fits (< 2^34 for 8-byte types), but row size × ne1 can pass
        // 2^64 (f64, i64) and wrap to a small count, so the product is checked
        if (__builtin_mul_overflow((uint64_t) ggml_row_size(type, t.ne[0]), (uint64_t) t.ne[1], &t.nbytes)) {
            c.fail("tensor " + t.name + ": " + std::to_string(t.ne[0]) + " × " + std::to_string(t.ne[1]) + " " + ggml_type_name(type) +
                   " elements need more bytes than 64 bits can count");
        }
        t.data = c.take(t.nbytes, ("the data of tensor " + t.name).c_str());
        if (!index_.emplace(t.name, tensors_.size()).second) c.fail("tensor " + t.name + " appears twice");
        tensors_.push_back(std::move(t));
    }
}

const legacy_tensor * legacy_ggml_file::find(const std::string & name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

}   // namespace gpt2
