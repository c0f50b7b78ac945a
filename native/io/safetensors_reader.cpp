#include "io/safetensors_reader.h"

#include "util/error.h"

#include "nlohmann/json.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace gpt2 {

namespace {

using json = nlohmann::json;

// The header is JSON text; real ones are a few hundred KB. This bound keeps a corrupt length
// field from making us parse (or allocate for) gigabytes.
constexpr uint64_t k_max_header = 100ull << 20;

uint64_t read_u64_le(const uint8_t * p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// Bytes per element of the dtypes safetensors defines; 0 for an unknown dtype.
uint64_t dtype_size(const std::string & d) {
    static const std::pair<const char *, uint64_t> sizes[] = {
        { "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 },  { "I32", 4 },     { "I16", 2 },     { "I8", 1 },
        { "U64", 8 }, { "U32", 4 }, { "U16", 2 }, { "U8", 1 },   { "BOOL", 1 }, { "F8_E4M3", 1 }, { "F8_E5M2", 1 },
    };
    for (const auto & [name, size] : sizes)
        if (d == name) return size;
    return 0;
}

}   // namespace

bool looks_like_safetensors(const uint8_t * head, size_t n, uint64_t file_size) {
    if (n < 9 || file_size < 10) return false;
    const uint64_t len = read_u64_le(head);
    return len >= 2 && len <= file_size - 8 && head[8] == '{';
}

safetensors_file::safetensors_file(const std::string & path) : file_(path) {
    auto            fail = [&](const std::string & what) -> void { throw bad_model(path, what); };
    const uint8_t * base = file_.data();
    const uint64_t  size = file_.size();
    if (size < 8) fail("not a safetensors file (shorter than its 8-byte header length)");
    const uint64_t header_len = read_u64_le(base);
    if (header_len > size - 8) {
        fail("safetensors header length " + std::to_string(header_len) + " exceeds the file size " + std::to_string(size) +
             " (truncated?)");
    }
    if (header_len > k_max_header) fail("safetensors header length " + std::to_string(header_len) + " is implausibly large");

    json header;
    try {
        header = json::parse(base + 8, base + 8 + header_len);
    } catch (const json::exception & e) { fail(std::string("safetensors header is not valid JSON (") + e.what() + ")"); }
    if (!header.is_object()) fail("safetensors header is not a JSON object");

    const uint64_t  data_size = size - 8 - header_len;
    const uint8_t * data      = base + 8 + header_len;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string & name = it.key();
        if (name == "__metadata__") {
            if (!it->is_object()) fail("__metadata__ is not an object");
            continue;
        }
        const json &      v     = *it;
        const std::string where = "tensor " + name;
        if (!v.is_object()) fail(where + ": entry is not an object");
        if (!v.contains("dtype") || !v["dtype"].is_string()) fail(where + ": dtype missing or not a string");
        if (!v.contains("shape") || !v["shape"].is_array()) fail(where + ": shape missing or not an array");
        if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
            !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned()) {
            fail(where + ": data_offsets is not a pair of unsigned integers");
        }
        safetensors_tensor t;
        t.name               = name;
        t.dtype              = v["dtype"].get<std::string>();
        const uint64_t esize = dtype_size(t.dtype);
        if (esize == 0) fail(where + ": unknown dtype \"" + t.dtype + "\"");
        if (v["shape"].size() > 8) fail(where + ": " + std::to_string(v["shape"].size()) + " dimensions");
        uint64_t n_elements = 1;
        for (const json & d : v["shape"]) {
            if (!d.is_number_unsigned()) fail(where + ": shape holds a value that is not a non-negative integer");
            const uint64_t k = d.get<uint64_t>();
            // every dimension, also after a zero (which makes the product pass anything), must fit
            // the int64_t it is stored in
            if (k > (uint64_t) INT64_MAX) fail(where + ": shape holds " + std::to_string(k) + ", more than 2^63 - 1");
            // the element count must fit the file; checked per factor so the product cannot overflow
            if (k != 0 && n_elements > data_size / k) fail(where + ": shape is larger than the file");
            n_elements *= k;
            t.shape.push_back((int64_t) k);
        }
        const uint64_t begin = v["data_offsets"][0].get<uint64_t>();
        const uint64_t end   = v["data_offsets"][1].get<uint64_t>();
        if (begin > end || end > data_size) {
            fail(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] lie outside the " +
                 std::to_string(data_size) + " data bytes (truncated?)");
        }
        if (end - begin != n_elements * esize) {
            fail(where + ": " + std::to_string(end - begin) + " bytes for " + std::to_string(n_elements) + " " + t.dtype + " elements");
        }
        t.data   = data + begin;
        t.nbytes = end - begin;
        tensors_.push_back(std::move(t));
    }
    std::sort(tensors_.begin(), tensors_.end(), [](const auto & a, const auto & b) { return a.name < b.name; });
}

const safetensors_tensor * safetensors_file::find(const std::string & name) const {
    auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name, [](const auto & t, const std::string & n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

}   // namespace gpt2
