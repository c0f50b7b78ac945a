// UTF-8 decoding with WHATWG replacement (as TextDecoder) and the streaming detokenizer.
#include "tokenizer.h"

#include "unicode.h"

#include <cstring>

namespace gpt2 {

namespace {

void append_replacement(std::string & out) { out.append("\xEF\xBF\xBD"); }

}   // namespace

void utf8_decoder::push(const uint8_t * s, size_t n, std::string & out) {
    size_t i = 0;
    while (i < n) {
        const uint8_t b = s[i];
        if (needed_ == 0) {
            if (b < 0x80) {
                // ASCII run
                size_t j = i + 1;
                while (j < n && s[j] < 0x80) { ++j; }
                out.append(reinterpret_cast<const char *>(s + i), j - i);
                i = j;
                continue;
            }
            lower_ = 0x80;
            upper_ = 0xBF;
            if (b >= 0xC2 && b <= 0xDF) {
                needed_ = 1;
                cp_     = b & 0x1Fu;
            } else if (b >= 0xE0 && b <= 0xEF) {
                if (b == 0xE0) { lower_ = 0xA0; }
                if (b == 0xED) { upper_ = 0x9F; }
                needed_ = 2;
                cp_     = b & 0x0Fu;
            } else if (b >= 0xF0 && b <= 0xF4) {
                if (b == 0xF0) { lower_ = 0x90; }
                if (b == 0xF4) { upper_ = 0x8F; }
                needed_ = 3;
                cp_     = b & 0x07u;
            } else {
                append_replacement(out);
            }
            seen_ = 0;
            ++i;
            continue;
        }
        if (b < lower_ || b > upper_) {
            // The sequence cannot complete: one U+FFFD for it, then reprocess this byte.
            cp_     = 0;
            needed_ = 0;
            seen_   = 0;
            append_replacement(out);
            continue;
        }
        lower_ = 0x80;
        upper_ = 0xBF;
        cp_    = (cp_ << 6) | (b & 0x3Fu);
        ++seen_;
        ++i;
        if (seen_ == needed_) {
            utf8_append(out, cp_);
            cp_     = 0;
            needed_ = 0;
            seen_   = 0;
        }
    }
}

void utf8_decoder::finish(std::string & out) {
    if (needed_ != 0) {
        append_replacement(out);
        cp_     = 0;
        needed_ = 0;
        seen_   = 0;
    }
}

std::string utf8_sanitize(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    utf8_decoder dec;
    dec.push(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(), out);
    dec.finish(out);
    return out;
}

bool utf8_valid(std::string_view bytes, bool * ascii) {
    const auto * s          = reinterpret_cast<const uint8_t *>(bytes.data());
    const size_t n          = bytes.size();
    bool         only_ascii = true;
    size_t       i          = 0;
    while (i < n) {
        // skip ASCII 8 bytes at a time
        if (i + 8 <= n) {
            uint64_t w;
            std::memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            ++i;
            continue;
        }
        only_ascii = false;
        size_t len = 1;
        if (utf8_next(s, n, i, len) == k_invalid_cp) { return false; }
        i += len;
    }
    if (ascii != nullptr) { *ascii = only_ascii; }
    return true;
}

stream_decoder::stream_decoder(std::shared_ptr<const tokenizer> tok) : tok_(std::move(tok)) {}

std::string stream_decoder::push(uint32_t id) {
    const std::string_view b = tok_->token_bytes(id);
    std::string            out;
    dec_.push(reinterpret_cast<const uint8_t *>(b.data()), b.size(), out);
    return out;
}

std::string stream_decoder::flush() {
    std::string out;
    dec_.finish(out);
    return out;
}

}   // namespace gpt2
