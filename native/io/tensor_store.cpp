#include "io/tensor_store.h"

#include "util/error.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

namespace gpt2 {

tensor_store::tensor_store(size_t max_tensors) : max_(max_tensors) {
    ggml_init_params params = { ggml_tensor_overhead() * (max_tensors + 1), nullptr, /*no_alloc =*/true };
    ctx_                    = ggml_init(params);
    if (!ctx_) throw error(codes::out_of_memory, "cannot allocate a ggml context");
}

tensor_store::~tensor_store() {
    if (buffer_) ggml_backend_buffer_free(buffer_);
    if (ctx_) ggml_free(ctx_);
}

ggml_tensor * tensor_store::add(const std::string & name, ggml_type type, int64_t ne0, int64_t ne1) {
    if (buffer_ || n_ >= max_) throw error(codes::internal, "tensor_store: add() after allocate() or past capacity");
    if (name.size() >= GGML_MAX_NAME) throw error(codes::bad_model, "tensor name too long: " + name);
    if (ggml_get_tensor(ctx_, name.c_str())) throw error(codes::bad_model, "tensor " + name + " appears twice");
    ggml_tensor * t = ggml_new_tensor_2d(ctx_, type, ne0, ne1);
    ggml_set_name(t, name.c_str());
    ++n_;
    return t;
}

void tensor_store::allocate() {
    if (buffer_) return;
    buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_, ggml_backend_cpu_buffer_type());
    if (!buffer_ && n_ > 0) throw error(codes::out_of_memory, "cannot allocate memory for the model weights");
    if (buffer_) ggml_backend_buffer_set_usage(buffer_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
}

}   // namespace gpt2
