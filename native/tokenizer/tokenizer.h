// GPT-2's tokenizer: byte-level BPE over OpenAI's pre-tokenizer (r50k_base), giving the
// same ids as tiktoken. Loads from a GGUF (tokenizer.ggml.*), HF vocab.json + merges.txt,
// or HF tokenizer.json. Immutable after construction; encode/decode are thread-safe.
//
// Merge semantics follow tiktoken: two adjacent parts merge when their concatenated bytes
// are a token produced by a merge, lowest merge rank first, leftmost first among equals.
// This is a superset of "the pair is listed in merges.txt" (HF's rule): the GPT-2 vocab has
// 58k token splits that are not listed merges, and tiktoken merges those too.
//
// Not here: N-API (native/addon/), chat templates, other tokenizer families.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct gguf_context;

namespace gpt2 {

struct tokenizer_data;

class tokenizer {
public:
    // tokens: vocab strings in GPT-2's byte-to-unicode form (vocab.json keys /
    // tokenizer.ggml.tokens), index = id. merges: "a b" lines in rank order. special_ids:
    // tokens that are control/added tokens (their text is literal, not byte-level, and they
    // are only produced by encode when allow_special); eos_id is always special.
    // Throws std::runtime_error with a clear message on bad data.
    static std::shared_ptr<const tokenizer> from_vocab(std::vector<std::string> tokens, const std::vector<std::string> & merges,
                                                       int32_t eos_id, const std::vector<uint32_t> & special_ids = {});
    // Reads tokenizer.ggml.model (must be "gpt2" when present), .tokens, .merges,
    // .eos_token_id and, when present, .token_type (3 = control = special).
    static std::shared_ptr<const tokenizer> from_gguf(const struct gguf_context * ctx);
    // A vocabulary of raw token bytes whose ids are in merge order, as legacy ggml GPT-2 files
    // store it (no merges): the merges are recovered by derive_merges(). The token whose bytes
    // are "<|endoftext|>" is the (special) end-of-text token.
    static std::shared_ptr<const tokenizer> from_token_bytes(const std::vector<std::string> & token_bytes);
    // A .gguf file, vocab.json (with merges.txt beside it), tokenizer.json, or a folder
    // holding tokenizer.json or vocab.json + merges.txt.
    static std::shared_ptr<const tokenizer> from_file(const std::string & path);

    ~tokenizer();
    tokenizer(const tokenizer &)             = delete;
    tokenizer & operator=(const tokenizer &) = delete;

    // allow_special: literal special-token text (e.g. "<|endoftext|>") becomes its id;
    // otherwise it is encoded as ordinary text. Input need not be valid UTF-8.
    std::vector<uint32_t> encode(std::string_view utf8, bool allow_special) const;
    // Appends to `out` instead of returning a new vector.
    void encode_into(std::string_view utf8, bool allow_special, std::vector<uint32_t> & out) const;
    // Only the special tokens listed are recognized (ids that are not special are ignored).
    void encode_into(std::string_view utf8, const std::vector<uint32_t> & allowed_special, std::vector<uint32_t> & out) const;
    // Number of tokens encode() would return.
    size_t count(std::string_view utf8, bool allow_special) const;

    // Raw bytes (may be invalid UTF-8). Throws std::out_of_range for an id >= n_vocab().
    std::string decode(const uint32_t * ids, size_t n) const;
    void        decode_into(const uint32_t * ids, size_t n, std::string & out) const;
    // Decoded bytes of one token. Throws std::out_of_range for an id >= n_vocab().
    std::string_view token_bytes(uint32_t id) const;

    uint32_t n_vocab() const;
    int32_t  eos_id() const;
    bool     is_special(uint32_t id) const;
    // Ids of the special tokens, ascending.
    const std::vector<uint32_t> & special_ids() const;
    // A token as vocab.json / tokenizer.ggml.tokens write it (byte-level alphabet; special
    // tokens literally), and the merges as given: what writing a GGUF needs. The merges are
    // kept as id pairs and their texts rebuilt here, on demand.
    std::string              token_text(uint32_t id) const;
    std::vector<std::string> merges() const;

private:
    tokenizer();
    std::unique_ptr<tokenizer_data> d_;
};

// Recovers the merges of a byte-level BPE vocabulary whose ids are in merge order (GPT-2's:
// 256 byte tokens, then each merged token in the order its merge was learned). Token i's merge
// is found by encoding its bytes with the tokens before it: a BPE vocabulary gives exactly two
// parts. Returns "a b" lines in the byte-level alphabet; skips ids marked special. Throws
// std::runtime_error naming the first token that is not the merge of two earlier ones.
std::vector<std::string> derive_merges(const std::vector<std::string> & token_bytes, const std::vector<uint8_t> & special);

// Incremental UTF-8 decoder with the WHATWG Encoding Standard's error handling (each
// maximal ill-formed subpart becomes one U+FFFD), the same result as JavaScript's
// TextDecoder. Output is always well-formed UTF-8.
class utf8_decoder {
public:
    // Decodes what it can; an incomplete trailing sequence is kept for the next call.
    void push(const uint8_t * s, size_t n, std::string & out);
    // Ends the stream: a kept incomplete sequence becomes U+FFFD.
    void finish(std::string & out);
    bool pending() const { return needed_ != 0; }

private:
    uint32_t cp_     = 0;
    uint8_t  needed_ = 0;
    uint8_t  seen_   = 0;
    uint8_t  lower_  = 0x80;
    uint8_t  upper_  = 0xBF;
};

// Converts bytes to well-formed UTF-8 (WHATWG replacement, as utf8_decoder).
std::string utf8_sanitize(std::string_view bytes);
// True when bytes are well-formed UTF-8 (then utf8_sanitize would return them unchanged).
// `ascii`, when given, is set to whether all bytes are < 0x80.
bool utf8_valid(std::string_view bytes, bool * ascii = nullptr);

// Streaming detokenizer for generation: feed ids, get text. A returned chunk never ends
// inside a UTF-8 sequence; bytes of a sequence that is still incomplete are held until the
// next push; bytes that can no longer complete become U+FFFD; flush() ends the stream and
// turns a held incomplete sequence into U+FFFD. Not thread-safe (one per sequence).
class stream_decoder {
public:
    explicit stream_decoder(std::shared_ptr<const tokenizer> tok);
    // Throws std::out_of_range for an id >= n_vocab().
    std::string push(uint32_t id);
    std::string flush();
    // True when bytes are held back waiting for the rest of a UTF-8 sequence.
    bool pending() const { return dec_.pending(); }

private:
    std::shared_ptr<const tokenizer> tok_;
    utf8_decoder                     dec_;
};

}   // namespace gpt2
