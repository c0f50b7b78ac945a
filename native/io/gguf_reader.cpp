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

gguf_reader::gguf_reader(const std::string & path) : path_(path) {
    ggml_log_capture_install();
    // Open it ourselves first: a missing file is ERR_NOT_FOUND, not a parse error, and a file
    // too short to be GGUF gets a clear message instead of ggml's.
    file_ = std::make_unique<mapped_file>(path);
    if (file_->size() < 4 || std::memcmp(file_->data(), "GGUF", 4) != 0) { fail("not a GGUF file (the first 4 bytes are not \"GGUF\")"); }
    ggml_log_take_last_error();
    gguf_init_params params = { /*no_alloc =*/true, /*ctx =*/&meta_ };
    gguf_                   = gguf_init_from_file(path.c_str(), params);
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
