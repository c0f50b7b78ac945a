#include "io/gguf_reader.h"

#include "util/error.h"
#include "util/log.h"

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"

#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>

namespace gpt2 {

static thread_local std::string t_last_error;

static void ggml_log_sink(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        t_last_error = text;
        while (!t_last_error.empty() && (t_last_error.back() == '\n' || t_last_error.back() == ' ')) t_last_error.pop_back();
    }
    log_write(level == GGML_LOG_LEVEL_ERROR      ? log_level::error
                  : level == GGML_LOG_LEVEL_WARN ? log_level::warn
                  : level == GGML_LOG_LEVEL_INFO ? log_level::info
                                                 : log_level::debug,
              "ggml", text);
}

void ggml_log_capture_install() {
    static std::once_flag once;
    std::call_once(once, [] { ggml_log_set(ggml_log_sink, nullptr); });
}

std::string ggml_log_take_last_error() {
    std::string s;
    s.swap(t_last_error);
    return s;
}

namespace {

// A bounds-checked cursor over the mapped file: every read fails (false) past the end.
struct cursor {
    const uint8_t *            p;
    size_t                     left;
    template <typename T> bool read(T & v) {
        if (left < sizeof(T)) return false;
        std::memcpy(&v, p, sizeof(T));
        p += sizeof(T);
        left -= sizeof(T);
        return true;
    }
    bool skip(uint64_t n) {
        if (left < n) return false;
        p += n;
        left -= n;
        return true;
    }
    bool skip_string() {
        uint64_t n = 0;
        return read(n) && skip(n);
    }
};

// Bytes of one GGUF metadata value of a fixed-size type; 0 for strings, arrays and unknown types.
uint64_t fixed_size(uint32_t type) {
    switch (type) {
    case 0:
    case 1:
    case 7: return 1;   // u8, i8, bool
    case 2:
    case 3: return 2;   // u16, i16
    case 4:
    case 5:
    case 6: return 4;   // u32, i32, f32
    case 10:
    case 11:
    case 12: return 8;   // u64, i64, f64
    default: return 0;
    }
}

// GGUF's value types are 0..12; ggml's parser stores the file's number in its enum before it
// checks the range (undefined behaviour for a number the enum cannot hold).
constexpr uint32_t gguf_type_count = 13;

enum class scan { ok, past_end, unknown_type, other };

// Skips one metadata value: `past_end` when the file ends inside it (a length that runs past
// the end included), `unknown_type` for a type number outside GGUF's, `other` for what ggml's
// parser rejects by itself with its own message (an array of arrays).
scan skip_value(cursor & c, uint32_t type) {
    if (type >= gguf_type_count) return scan::unknown_type;
    if (const uint64_t n = fixed_size(type)) return c.skip(n) ? scan::ok : scan::past_end;
    if (type == 8) return c.skip_string() ? scan::ok : scan::past_end;
    uint32_t elem  = 0;
    uint64_t count = 0;
    if (!c.read(elem)) return scan::past_end;
    if (elem >= gguf_type_count) return scan::unknown_type;
    if (!c.read(count)) return scan::past_end;
    if (const uint64_t n = fixed_size(elem)) return count <= c.left / n && c.skip(count * n) ? scan::ok : scan::past_end;
    if (elem != 8) return scan::other;
    for (uint64_t i = 0; i < count; ++i)
        if (!c.skip_string()) return scan::past_end;
    return scan::ok;
}

}   // namespace

std::string gguf_reader::header_problem() const {
    // ggml's parser meets three things in a header before it checks them: a tensor's element
    // count (computed, then checked against 64 bits: signed overflow, found by the sanitizer run,
    // docs/reliability.md), type numbers (stored into its enums, then range-checked) and the end
    // of the file inside a type field (it then tests its own out-of-range sentinel; found by the
    // GGUF fuzzer). So the metadata and tensor infos are scanned here first and those are
    // refused. What else is malformed (a dimension count over 4, a negative dimension, an array
    // of arrays) ends this scan without a verdict: ggml's parser rejects it with its own message.
    cursor   c{ static_cast<const uint8_t *>(file_->data()) + 4, file_->size() - 4 };
    uint32_t version   = 0;
    int64_t  n_tensors = 0, n_kv = 0;
    if (!c.read(version) || (version != 2 && version != 3) || !c.read(n_tensors) || !c.read(n_kv) || n_tensors < 0 || n_kv < 0) return {};
    const auto past_end = [](const char * what, int64_t i) {
        return std::string("the file ends inside ") + what + " " + std::to_string(i) + " (truncated, or a length past its end)";
    };
    for (int64_t i = 0; i < n_kv; ++i) {
        uint32_t type = 0;
        if (!c.skip_string() || !c.read(type)) return past_end("metadata key", i);
        switch (skip_value(c, type)) {
        case scan::ok: break;
        case scan::past_end: return past_end("metadata value", i);
        case scan::unknown_type: return "metadata value " + std::to_string(i) + " has an unknown type";
        case scan::other: return {};
        }
    }
    for (int64_t i = 0; i < n_tensors; ++i) {
        uint32_t n_dims = 0;
        if (!c.skip_string() || !c.read(n_dims)) return past_end("tensor info", i);
        if (n_dims > GGML_MAX_DIMS) return {};
        int64_t     count = 1;
        std::string dims;
        bool        overflow = false;
        for (uint32_t d = 0; d < n_dims; ++d) {
            int64_t ne = 0;
            if (!c.read(ne)) return past_end("tensor info", i);
            if (ne < 0) return {};
            dims += (d ? ", " : "") + std::to_string(ne);
            overflow = overflow || __builtin_mul_overflow(count, ne, &count);
        }
        if (overflow) return "tensor " + std::to_string(i) + " has shape (" + dims + "), more elements than 64 bits can count";
        uint32_t type = 0;
        if (!c.read(type)) return past_end("tensor info", i);
        if (type >= GGML_TYPE_COUNT) return "tensor " + std::to_string(i) + " has unknown type " + std::to_string(type);
        if (!c.skip(8)) return past_end("tensor info", i);   // offset
    }
    return {};
}

gguf_reader::gguf_reader(const std::string & path) : path_(path) {
    ggml_log_capture_install();
    // Open it ourselves first: a missing file is ERR_NOT_FOUND, not a parse error, and a file
    // too short to be GGUF gets a clear message instead of ggml's.
    file_ = std::make_unique<mapped_file>(path);
    if (file_->size() < 4 || std::memcmp(file_->data(), "GGUF", 4) != 0) { fail("not a GGUF file (the first 4 bytes are not \"GGUF\")"); }
    if (const std::string why = header_problem(); !why.empty()) fail("invalid GGUF (" + why + ")");
    ggml_log_take_last_error();
    gguf_init_params params = { /*no_alloc =*/true, /*ctx =*/&meta_ };
    // ggml parses the mapped bytes the scan saw (not the file again: it may change in between)
    gguf_ = gguf_init_from_buffer(file_->data(), file_->size(), params);
    if (!gguf_) {
        std::string why = ggml_log_take_last_error();
        fail("invalid GGUF" + (why.empty() ? std::string() : " (" + why + ")"));
    }
}

gguf_reader::~gguf_reader() {
    if (buffer_) ggml_backend_buffer_free(buffer_);
    if (meta_) ggml_free(meta_);
    if (gguf_) gguf_free(gguf_);
}

void gguf_reader::fail(const std::string & what) const { throw bad_model(path_, what); }

const gguf_context * gguf_reader::parsed() const {
    if (!gguf_) throw std::logic_error("gguf_reader: metadata read after drop_metadata()");
    return gguf_;
}

void gguf_reader::drop_metadata() {
    if (gguf_) gguf_free(gguf_);
    gguf_ = nullptr;
}

bool gguf_reader::has(const char * key) const { return gguf_find_key(parsed(), key) >= 0; }

std::optional<uint64_t> gguf_reader::get_uint(const char * key) const {
    const gguf_context * g  = parsed();
    const int64_t        id = gguf_find_key(g, key);
    if (id < 0) return std::nullopt;
    const gguf_type t         = gguf_get_kv_type(g, id);
    int64_t         s         = 0;
    uint64_t        u         = 0;
    bool            is_signed = true;
    switch (t) {
    case GGUF_TYPE_UINT8:
        u         = gguf_get_val_u8(g, id);
        is_signed = false;
        break;
    case GGUF_TYPE_UINT16:
        u         = gguf_get_val_u16(g, id);
        is_signed = false;
        break;
    case GGUF_TYPE_UINT32:
        u         = gguf_get_val_u32(g, id);
        is_signed = false;
        break;
    case GGUF_TYPE_UINT64:
        u         = gguf_get_val_u64(g, id);
        is_signed = false;
        break;
    case GGUF_TYPE_INT8: s = gguf_get_val_i8(g, id); break;
    case GGUF_TYPE_INT16: s = gguf_get_val_i16(g, id); break;
    case GGUF_TYPE_INT32: s = gguf_get_val_i32(g, id); break;
    case GGUF_TYPE_INT64: s = gguf_get_val_i64(g, id); break;
    default: fail(std::string("metadata ") + key + " has type " + gguf_type_name(t) + ", expected an integer");
    }
    if (is_signed) {
        if (s < 0) fail(std::string("metadata ") + key + " is negative (" + std::to_string(s) + ")");
        u = (uint64_t) s;
    }
    return u;
}

std::optional<float> gguf_reader::get_float(const char * key) const {
    const gguf_context * g  = parsed();
    const int64_t        id = gguf_find_key(g, key);
    if (id < 0) return std::nullopt;
    const gguf_type t = gguf_get_kv_type(g, id);
    if (t == GGUF_TYPE_FLOAT32) return gguf_get_val_f32(g, id);
    if (t == GGUF_TYPE_FLOAT64) return (float) gguf_get_val_f64(g, id);
    fail(std::string("metadata ") + key + " has type " + gguf_type_name(t) + ", expected a float");
}

std::optional<std::string> gguf_reader::get_string(const char * key) const {
    const gguf_context * g  = parsed();
    const int64_t        id = gguf_find_key(g, key);
    if (id < 0) return std::nullopt;
    const gguf_type t = gguf_get_kv_type(g, id);
    if (t != GGUF_TYPE_STRING) fail(std::string("metadata ") + key + " has type " + gguf_type_name(t) + ", expected a string");
    return std::string(gguf_get_val_str(g, id));
}

ggml_tensor * gguf_reader::tensor(const std::string & name) const { return ggml_get_tensor(meta_, name.c_str()); }

int64_t gguf_reader::n_tensors() const { return gguf_get_n_tensors(parsed()); }

void gguf_reader::bind_data() {
    if (buffer_) return;
    const gguf_context * g           = parsed();
    const size_t         data_offset = gguf_get_data_offset(g);
    const size_t         size        = file_->size();
    const int64_t        n           = gguf_get_n_tensors(g);
    if (n > 0 && data_offset > size) fail("tensor data starts past the end of the file (truncated?)");
    for (int64_t i = 0; i < n; ++i) {
        const char *  name   = gguf_get_tensor_name(g, i);
        const size_t  offset = gguf_get_tensor_offset(g, i);
        ggml_tensor * t      = ggml_get_tensor(meta_, name);
        const size_t  nbytes = ggml_nbytes(t);
        if (offset > size - data_offset || nbytes > size - data_offset - offset) {
            fail(std::string("tensor ") + name + " extends past the end of the file (needs " +
                 std::to_string(data_offset + offset + nbytes) + " bytes, file has " + std::to_string(size) + "; truncated?)");
        }
    }
    // One CPU buffer over the whole mapping (page-aligned base, as ggml requires), tensors pointing
    // into it: weights are read where they lie, never copied.
    buffer_ = ggml_backend_cpu_buffer_from_ptr(const_cast<uint8_t *>(file_->data()), size);
    if (!buffer_) fail("cannot create a buffer over the file mapping");
    ggml_backend_buffer_set_usage(buffer_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    for (int64_t i = 0; i < n; ++i) {
        ggml_tensor * t    = ggml_get_tensor(meta_, gguf_get_tensor_name(g, i));
        void *        addr = const_cast<uint8_t *>(file_->data()) + data_offset + gguf_get_tensor_offset(g, i);
        if (ggml_backend_tensor_alloc(buffer_, t, addr) != GGML_STATUS_SUCCESS) {
            fail(std::string("cannot bind tensor ") + ggml_get_name(t));
        }
    }
}

}   // namespace gpt2
