#include "pretokenizer.h"

#include "unicode.h"

namespace gpt2 {

namespace {

// ASCII classes, so the common case needs no table lookup through a function call.
struct ascii_classes {
    uint8_t cls[128];
    constexpr ascii_classes() : cls() {
        for (int c = 0; c < 128; ++c) {
            uint8_t v = 0;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                v = 1;
            } else if (c >= '0' && c <= '9') {
                v = 2;
            } else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
                v = 3;
            }
            cls[c] = v;
        }
    }
};

constexpr ascii_classes k_ascii{};

struct char_info {
    cp_class cls;
    size_t   len;
};

inline char_info char_at(const uint8_t * s, size_t n, size_t i, const uint8_t * bmp) {
    const uint8_t c = s[i];
    if (c < 0x80) { return { static_cast<cp_class>(k_ascii.cls[c]), 1 }; }
    size_t         len = 1;
    const uint32_t cp  = utf8_next(s, n, i, len);
    if (cp == k_invalid_cp) { return { cp_class::other, 1 }; }
    if (cp < 0x10000) { return { static_cast<cp_class>(bmp[cp]), len }; }
    return { classify(cp), len };
}

// End of the run of characters of class `cls` starting at i.
inline size_t run_end(const uint8_t * s, size_t n, size_t i, cp_class cls, const uint8_t * bmp) {
    while (i < n) {
        const uint8_t c = s[i];
        if (c < 0x80) {
            if (static_cast<cp_class>(k_ascii.cls[c]) != cls) { break; }
            ++i;
            continue;
        }
        const char_info ci = char_at(s, n, i, bmp);
        if (ci.cls != cls) { break; }
        i += ci.len;
    }
    return i;
}

}   // namespace

size_t pretokenize_next(const uint8_t * s, size_t n, size_t pos) {
    const uint8_t * bmp = bmp_class_table();
    const uint8_t   c   = s[pos];

    // 's 't 're 've 'm 'll 'd
    if (c == '\'' && pos + 1 < n) {
        const uint8_t d = s[pos + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') { return pos + 2; }
        if (pos + 2 < n) {
            const uint8_t e = s[pos + 2];
            if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) { return pos + 3; }
        }
    }

    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020 then a run of one class.
    if (c == ' ' && pos + 1 < n) {
        const char_info next = char_at(s, n, pos + 1, bmp);
        if (next.cls != cp_class::space) { return run_end(s, n, pos + 1 + next.len, next.cls, bmp); }
    }
    const char_info first = char_at(s, n, pos, bmp);
    if (first.cls != cp_class::space) { return run_end(s, n, pos + first.len, first.cls, bmp); }

    // "\s+(?!\S)|\s+": a whitespace run. If non-space follows it, the first alternative
    // backtracks to leave the run's last character for the next piece (when the run has
    // more than one character); a single character followed by non-space is "\s+".
    size_t last_start = pos;
    size_t i          = pos + first.len;
    while (i < n) {
        const char_info ci = char_at(s, n, i, bmp);
        if (ci.cls != cp_class::space) { break; }
        last_start = i;
        i += ci.len;
    }
    if (i == n) { return n; }
    return last_start > pos ? last_start : i;
}

}   // namespace gpt2
