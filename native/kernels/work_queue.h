// Work handed out to the threads of one ggml CPU op first come first served, for our custom ops.
//
// ggml calls a custom op once on each of its threads, and its own ops split their work in equal
// shares up front. When the system preempts one thread (the JS thread and others share the
// cores), the others then wait for it at the next barrier. Here each thread takes the next item
// while any are left, so a slow thread leaves its remaining share to the others. An item's
// result does not depend on which thread computes it.
#pragma once

#include <atomic>
#include <cstdint>

namespace gpt2 {

// One per thread pool (its graphs run one at a time), outliving the graphs; one op at a time
// uses it: ggml runs nodes in order with a barrier between them.
struct work_queue {
    std::atomic<int64_t> next{ 0 };   // the next item to take
    std::atomic<int>     done{ 0 };   // threads finished with the current op

    // The next item (>= n_items: none left).
    int64_t take() { return next.fetch_add(1, std::memory_order_relaxed); }

    // Called once by each of the op's nth threads when it has no more to take: the last one
    // out resets the queue for the next op (the barrier after this op follows).
    void finish(int nth) {
        if (done.fetch_add(1, std::memory_order_acq_rel) == nth - 1) {
            next.store(0, std::memory_order_relaxed);
            done.store(0, std::memory_order_release);
        }
    }
};

}   // namespace gpt2
