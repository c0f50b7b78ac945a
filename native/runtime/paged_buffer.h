// A ggml buffer type for the CPU whose buffers are anonymous mappings of their own, returned to
// the system when freed, for the compute buffers (what a graph's intermediate tensors live in).
//
// ggml's CPU buffer type takes them from malloc, and glibc raises its mmap threshold (up to 32
// MiB) each time a large block is freed: after one model is disposed, the next model's compute
// buffers come from the heap, which keeps what they leave, so resident memory grew with every
// load/dispose cycle while the bytes in use stayed flat (bench/soak.ts, docs/reliability.md).
// The KV cache is mapped the same way already (util/pages.h).
#pragma once

struct ggml_backend_buffer_type;

namespace gpt2 {

// The CPU buffer type where the platform has anonymous mappings; ggml's own elsewhere.
ggml_backend_buffer_type * paged_cpu_buffer_type();

}   // namespace gpt2
