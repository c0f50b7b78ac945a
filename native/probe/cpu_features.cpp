// cpu_features.node: what this CPU (and its OS) can run, for the loader that picks a prebuilt
// variant (lib/native-loader.ts). It is built without any -m flag and uses no ggml, so it loads on
// every CPU of its architecture; the variants themselves may not.
//
// Names follow Linux's /proc/cpuinfo flags, so that a variant's requirements read the same way
// everywhere. x86: a vector extension counts only where the OS saves its registers (XCR0).
#include <node_api.h>

#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace {

#if defined(__x86_64__) || defined(_M_X64)
struct regs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

regs cpuid(unsigned leaf, unsigned subleaf) {
    regs r;
#if defined(_MSC_VER)
    int v[4];
    __cpuidex(v, static_cast<int>(leaf), static_cast<int>(subleaf));
    r = { unsigned(v[0]), unsigned(v[1]), unsigned(v[2]), unsigned(v[3]) };
#else
    __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
#endif
    return r;
}

unsigned long long xcr0() {
#if defined(_MSC_VER)
    return _xgetbv(0);
#else
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}

bool bit(unsigned v, int n) { return (v >> n) & 1u; }

std::vector<std::string> features() {
    std::vector<std::string> out;
    const unsigned           max_leaf  = cpuid(0, 0).a;
    const regs               l1        = cpuid(1, 0);
    const regs               l7        = max_leaf >= 7 ? cpuid(7, 0) : regs{};
    const regs               l7s1      = max_leaf >= 7 && l7.a >= 1 ? cpuid(7, 1) : regs{};
    const unsigned long long xcr       = bit(l1.c, 27) ? xcr0() : 0;       // OSXSAVE
    const bool               os_avx    = (xcr & 0x6) == 0x6;               // XMM and YMM state
    const bool               os_avx512 = os_avx && (xcr & 0xe0) == 0xe0;   // opmask, ZMM_Hi256, Hi16_ZMM

    auto add = [&](bool yes, const char * name) {
        if (yes) out.emplace_back(name);
    };
    add(bit(l1.d, 26), "sse2");
    add(bit(l1.c, 0), "sse3");
    add(bit(l1.c, 9), "ssse3");
    add(bit(l1.c, 19), "sse4_1");
    add(bit(l1.c, 20), "sse4_2");
    add(bit(l1.c, 23), "popcnt");
    add(bit(l7.b, 3), "bmi1");
    add(bit(l7.b, 8), "bmi2");
    add(os_avx && bit(l1.c, 28), "avx");
    add(os_avx && bit(l1.c, 12), "fma");
    add(os_avx && bit(l1.c, 29), "f16c");
    add(os_avx && bit(l7.b, 5), "avx2");
    add(os_avx && bit(l7s1.a, 4), "avx_vnni");
    add(os_avx512 && bit(l7.b, 16), "avx512f");
    add(os_avx512 && bit(l7.b, 17), "avx512dq");
    add(os_avx512 && bit(l7.b, 28), "avx512cd");
    add(os_avx512 && bit(l7.b, 30), "avx512bw");
    add(os_avx512 && bit(l7.b, 31), "avx512vl");
    add(os_avx512 && bit(l7.c, 1), "avx512vbmi");
    add(os_avx512 && bit(l7.c, 11), "avx512_vnni");
    add(os_avx512 && bit(l7s1.a, 5), "avx512_bf16");
    add(os_avx512 && bit(l7.d, 23), "avx512_fp16");
    return out;
}
#elif defined(__aarch64__)
std::vector<std::string> features() {
    std::vector<std::string> out{ "neon" };   // Advanced SIMD is part of every AArch64 CPU
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (hw & (1ul << 10)) out.emplace_back("asimdhp");   // HWCAP_ASIMDHP: fp16 arithmetic
    if (hw & (1ul << 20)) out.emplace_back("asimddp");   // HWCAP_ASIMDDP: int8 dot products
    if (hw2 & (1ul << 13)) out.emplace_back("i8mm");     // HWCAP2_I8MM
#elif defined(__APPLE__)
    auto has = [](const char * name) {
        int    v = 0;
        size_t n = sizeof v;
        return sysctlbyname(name, &v, &n, nullptr, 0) == 0 && v != 0;
    };
    if (has("hw.optional.arm.FEAT_FP16")) out.emplace_back("asimdhp");
    if (has("hw.optional.arm.FEAT_DotProd")) out.emplace_back("asimddp");
    if (has("hw.optional.arm.FEAT_I8MM")) out.emplace_back("i8mm");
#endif
    return out;
}
#else
std::vector<std::string> features() { return {}; }
#endif

napi_value js_features(napi_env env, napi_callback_info) {
    const std::vector<std::string> list = features();
    napi_value                     arr;
    napi_create_array_with_length(env, list.size(), &arr);
    for (size_t i = 0; i < list.size(); i++) {
        napi_value s;
        napi_create_string_utf8(env, list[i].c_str(), list[i].size(), &s);
        napi_set_element(env, arr, static_cast<uint32_t>(i), s);
    }
    return arr;
}

}   // namespace

NAPI_MODULE_INIT() {
    napi_value fn;
    napi_create_function(env, "features", NAPI_AUTO_LENGTH, js_features, nullptr, &fn);
    napi_set_named_property(env, exports, "features", fn);
    return exports;
}
