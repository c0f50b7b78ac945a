// The tokenizer on arbitrary bytes (invalid UTF-8 included) with the real GPT-2 vocabulary:
// byte-level BPE is lossless, so decode(encode(x)) == x for every input, with and without
// special tokens; count() agrees with encode(); every id is in the vocabulary; the two modes
// differ only where "<|endoftext|>" occurs; the allow-list form equals allow_special.
#include "fuzz_support.h"

#include "io/gguf_reader.h"
#include "tokenizer/tokenizer.h"

#include <string_view>

namespace {

const gpt2::tokenizer & vocab() {
    static const std::shared_ptr<const gpt2::tokenizer> tok = gpt2::tokenizer::from_file(GPT2_FUZZ_VOCAB);
    return *tok;
}

}   // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const gpt2::tokenizer & tok = vocab();
    const std::string_view  text(reinterpret_cast<const char *>(data), size);
    std::vector<uint32_t> by_mode[2];
    for (const bool special : { false, true }) {
        const std::vector<uint32_t> & ids = by_mode[special] = tok.encode(text, special);
        for (const uint32_t id : ids) {
            FUZZ_CHECK(id < tok.n_vocab());
            FUZZ_CHECK(special || !tok.is_special(id));
        }
        FUZZ_CHECK(tok.count(text, special) == ids.size());
        FUZZ_CHECK(tok.decode(ids.data(), ids.size()) == text);
    }
    if (text.find("<|endoftext|>") == std::string_view::npos) FUZZ_CHECK(by_mode[0] == by_mode[1]);
    // the allow-list form with the one special token listed is allow_special
    std::vector<uint32_t> listed;
    tok.encode_into(text, std::vector<uint32_t>{ static_cast<uint32_t>(tok.eos_id()) }, listed);
    FUZZ_CHECK(listed == by_mode[1]);
    return 0;
}
