// Linked into the prebuilt binaries on Linux only (GPT2_NODE_STATIC_RUNTIME): a static libstdc++
// built on glibc 2.36 refers to arc4random (from std::random_device, which nothing of ours
// calls), and that one reference would raise the binaries' glibc floor from 2.34 to 2.36
// (Ubuntu 22.04 and RHEL 9 have less). Defined here, the reference binds to this copy instead.
#include <sys/random.h>

#include <cstdint>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
    uint32_t v = 0;
    if (getentropy(&v, sizeof v) != 0) __builtin_trap();   // cannot fail for 4 bytes on Linux >= 3.17
    return v;
}
