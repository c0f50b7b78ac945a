// Code point classification from the generated range table, with a flat table for the BMP.
#include "unicode.h"

#include <cstring>
#include <memory>

namespace gpt2 {

namespace {

struct cp_range {
    uint32_t lo;    // first code point
    uint32_t hi;    // last code point (inclusive)
    uint8_t  cls;   // cp_class value
};

const cp_range k_ranges[] = {
#include "unicode_tables.inc"
};

constexpr size_t k_n_ranges = sizeof(k_ranges) / sizeof(k_ranges[0]);

struct bmp_table {
    std::unique_ptr<uint8_t[]> cls;
    bmp_table() : cls(new uint8_t[0x10000]) {
        std::memset(cls.get(), 0, 0x10000);
        for (const cp_range & r : k_ranges) {
            if (r.lo > 0xFFFF) { break; }
            const uint32_t hi = r.hi < 0xFFFF ? r.hi : 0xFFFF;
            std::memset(cls.get() + r.lo, r.cls, hi - r.lo + 1);
        }
    }
};

}   // namespace

const uint8_t * bmp_class_table() {
    static const bmp_table table;
    return table.cls.get();
}

cp_class classify(uint32_t cp) {
    if (cp < 0x10000) { return static_cast<cp_class>(bmp_class_table()[cp]); }
    if (cp > 0x10FFFF) { return cp_class::other; }
    // binary search for the last range with lo <= cp
    size_t lo = 0;
    size_t hi = k_n_ranges;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (k_ranges[mid].lo <= cp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) { return cp_class::other; }
    const cp_range & r = k_ranges[lo - 1];
    return cp <= r.hi ? static_cast<cp_class>(r.cls) : cp_class::other;
}

}   // namespace gpt2
