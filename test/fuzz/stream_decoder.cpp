// The streaming detokenizer and the incremental UTF-8 decoder under it. The input is a list of
// 16-bit token ids (the real GPT-2 vocabulary; ids past it must throw std::out_of_range, as
// documented, and change nothing). Invariants: every chunk is well-formed UTF-8; the chunks
// together equal the whole sequence decoded at once and sanitized (WHATWG replacement, as
// JavaScript's TextDecoder); the same holds for the raw bytes pushed through utf8_decoder in
// the pieces the ids give.
#include "fuzz_support.h"

#include "tokenizer/tokenizer.h"

#include <stdexcept>

namespace {

const std::shared_ptr<const gpt2::tokenizer> & vocab() {
    static const std::shared_ptr<const gpt2::tokenizer> tok = gpt2::tokenizer::from_file(GPT2_FUZZ_VOCAB);
    return tok;
}

}   // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const auto &           tok = vocab();
    gpt2::stream_decoder   stream(tok);
    gpt2::utf8_decoder     raw;
    std::vector<uint32_t>  valid;
    std::string            streamed, raw_out;
    for (size_t i = 0; i + 1 < size; i += 2) {
        const uint32_t id = data[i] | (uint32_t(data[i + 1]) << 8);
        if (id >= tok->n_vocab()) {
            bool threw = false;
            try {
                stream.push(id);
            } catch (const std::out_of_range &) {
                threw = true;
            }
            FUZZ_CHECK(threw);
            continue;
        }
        valid.push_back(id);
        const std::string chunk = stream.push(id);
        FUZZ_CHECK(gpt2::utf8_valid(chunk));
        streamed += chunk;
        const std::string_view bytes = tok->token_bytes(id);
        raw.push(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(), raw_out);
    }
    const std::string tail = stream.flush();
    FUZZ_CHECK(gpt2::utf8_valid(tail));
    streamed += tail;
    raw.finish(raw_out);
    const std::string whole = gpt2::utf8_sanitize(tok->decode(valid.data(), valid.size()));
    FUZZ_CHECK(streamed == whole);
    FUZZ_CHECK(raw_out == whole);
    FUZZ_CHECK(!stream.pending() && !raw.pending());
    return 0;
}
