#include "runtime/paged_buffer.h"

#include "ggml-backend-impl.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>

namespace gpt2 {

namespace {

size_t mapped_size(size_t bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page;
}

void free_paged(ggml_backend_buffer_t buffer) { munmap(buffer->context, mapped_size(buffer->size)); }

const char * name(ggml_backend_buffer_type_t) { return "CPU_Paged"; }

size_t alignment(ggml_backend_buffer_type_t) { return ggml_backend_buft_get_alignment(ggml_backend_cpu_buffer_type()); }

bool is_host(ggml_backend_buffer_type_t) { return true; }

ggml_backend_buffer_t alloc(ggml_backend_buffer_type_t buft, size_t size) {
    const size_t bytes = size == 0 ? 1 : size;   // ggml asks for 0 bytes for an empty graph
    void *       p     = mmap(nullptr, mapped_size(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;   // ggml reports the failed allocation
    // ggml's CPU buffer over our pages (its tensor copies, memset and clear), owning them: freed by munmap
    ggml_backend_buffer_t view  = ggml_backend_cpu_buffer_from_ptr(p, bytes);
    ggml_backend_buffer_i iface = view->iface;
    ggml_backend_buffer_free(view);   // the view does not own its pages: only the struct goes
    iface.free_buffer = free_paged;
    return ggml_backend_buffer_init(buft, iface, p, bytes);
}

}   // namespace

ggml_backend_buffer_type * paged_cpu_buffer_type() {
    static ggml_backend_buffer_type type = {
        /* .iface   = */ { name, alloc, alignment, /* get_max_size */ nullptr, /* get_alloc_size */ nullptr, is_host },
        /* .device  = */ ggml_backend_cpu_buffer_type()->device,
        /* .context = */ nullptr,
    };
    return &type;
}

}   // namespace gpt2

#else

namespace gpt2 {

ggml_backend_buffer_type * paged_cpu_buffer_type() { return ggml_backend_cpu_buffer_type(); }

}   // namespace gpt2

#endif
