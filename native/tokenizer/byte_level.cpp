#include "byte_level.h"

#include "unicode.h"

#include <array>

namespace gpt2 {

namespace {

bool is_self_mapped(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct byte_tables {
    std::array<uint32_t, 256> to_cp{};
    std::array<int16_t, 512>  from_cp{};   // code point (< 0x200) -> byte, or -1
    byte_tables() {
        from_cp.fill(-1);
        uint32_t next = 0x100;
        for (uint32_t b = 0; b < 256; ++b) {
            to_cp[b]          = is_self_mapped(b) ? b : next++;
            from_cp[to_cp[b]] = static_cast<int16_t>(b);
        }
    }
};

const byte_tables & tables() {
    static const byte_tables t;
    return t;
}

}   // namespace

uint32_t byte_to_cp(uint8_t b) { return tables().to_cp[b]; }

bool byte_level_decode(std::string_view token, std::string & out) {
    const byte_tables & t = tables();
    out.clear();
    const auto * s = reinterpret_cast<const uint8_t *>(token.data());
    const size_t n = token.size();
    for (size_t i = 0; i < n;) {
        size_t         len = 1;
        const uint32_t cp  = utf8_next(s, n, i, len);
        if (cp == k_invalid_cp || cp >= t.from_cp.size() || t.from_cp[cp] < 0) { return false; }
        out.push_back(static_cast<char>(t.from_cp[cp]));
        i += len;
    }
    return true;
}

std::string byte_level_encode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) { utf8_append(out, byte_to_cp(static_cast<uint8_t>(c))); }
    return out;
}

}   // namespace gpt2
