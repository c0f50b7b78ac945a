// libFuzzer driving a JavaScript fuzz target: a Node-API module (test-only, built by
// test/fuzz/CMakeLists.txt with clang) that hands libFuzzer a counter region JavaScript fills
// (test/fuzz/js-coverage.ts instruments the target's code: one 8-bit counter per branch) and
// runs libFuzzer's loop on the main thread, calling the target synchronously with each input.
//
//   run(counters: Uint8Array, argv: string[], target: (data: Buffer) => void): number
//
// An exception thrown by the target is a finding: it is printed and the process aborts, so that
// libFuzzer saves the input (its abort handler), as for a crash in a native harness.
#include <node_api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" {
int  LLVMFuzzerRunDriver(int * argc, char *** argv, int (*callback)(const uint8_t * data, size_t size));
void __sanitizer_cov_8bit_counters_init(uint8_t * start, uint8_t * stop);
void __sanitizer_cov_pcs_init(const uintptr_t * pcs_beg, const uintptr_t * pcs_end);
}

namespace {

napi_env               g_env    = nullptr;
napi_ref               g_target = nullptr;
std::vector<uintptr_t> g_pcs;   // libFuzzer's PC table: one made-up PC per counter (for its cov: figure)

void check(napi_status status, const char * what) {
    if (status == napi_ok) return;
    std::fprintf(stderr, "js_driver: %s failed (napi status %d)\n", what, static_cast<int>(status));
    std::abort();
}

void report_and_abort(napi_env env) {
    napi_value exception = nullptr, text = nullptr, stack = nullptr;
    napi_get_and_clear_last_exception(env, &exception);
    bool has_stack = false;
    if (napi_has_named_property(env, exception, "stack", &has_stack) == napi_ok && has_stack &&
        napi_get_named_property(env, exception, "stack", &stack) == napi_ok) {
        text = stack;
    }
    if (!text) napi_coerce_to_string(env, exception, &text);
    size_t length = 0;
    napi_get_value_string_utf8(env, text, nullptr, 0, &length);
    std::string message(length, '\0');
    napi_get_value_string_utf8(env, text, message.data(), length + 1, &length);
    std::fprintf(stderr, "\n== the fuzz target threw (a finding):\n%s\n", message.c_str());
    std::fflush(stderr);
    std::abort();
}

int one_input(const uint8_t * data, size_t size) {
    napi_handle_scope scope = nullptr;
    check(napi_open_handle_scope(g_env, &scope), "napi_open_handle_scope");
    napi_value buffer = nullptr, target = nullptr, global = nullptr, result = nullptr;
    void *     copy   = nullptr;
    check(napi_create_buffer_copy(g_env, size, data, &copy, &buffer), "napi_create_buffer_copy");
    check(napi_get_reference_value(g_env, g_target, &target), "napi_get_reference_value");
    check(napi_get_global(g_env, &global), "napi_get_global");
    if (napi_call_function(g_env, global, target, 1, &buffer, &result) != napi_ok) {
        bool pending = false;
        napi_is_exception_pending(g_env, &pending);
        if (pending) report_and_abort(g_env);
        std::fprintf(stderr, "js_driver: calling the target failed\n");
        std::abort();
    }
    check(napi_close_handle_scope(g_env, scope), "napi_close_handle_scope");
    return 0;
}

napi_value run(napi_env env, napi_callback_info info) {
    size_t     argc = 3;
    napi_value args[3];
    check(napi_get_cb_info(env, info, &argc, args, nullptr, nullptr), "napi_get_cb_info");
    if (argc != 3) {
        napi_throw_type_error(env, nullptr, "run(counters, argv, target)");
        return nullptr;
    }
    napi_typedarray_type type;
    size_t               length = 0;
    void *               data   = nullptr;
    if (napi_get_typedarray_info(env, args[0], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array || length == 0) {
        napi_throw_type_error(env, nullptr, "counters must be a non-empty Uint8Array");
        return nullptr;
    }
    uint32_t n_args = 0;
    check(napi_get_array_length(env, args[1], &n_args), "napi_get_array_length");
    std::vector<std::string> strings(n_args + 1);
    strings[0] = "server-params";
    for (uint32_t i = 0; i < n_args; ++i) {
        napi_value s = nullptr;
        size_t     n = 0;
        check(napi_get_element(env, args[1], i, &s), "napi_get_element");
        check(napi_get_value_string_utf8(env, s, nullptr, 0, &n), "argv string");
        strings[i + 1].resize(n);
        check(napi_get_value_string_utf8(env, s, strings[i + 1].data(), n + 1, &n), "argv string");
    }
    std::vector<char *> argv;
    for (std::string & s : strings) argv.push_back(s.data());
    argv.push_back(nullptr);

    // The counters live in JavaScript's ArrayBuffer (its backing store does not move); the caller
    // keeps it alive for the whole run.
    auto * counters = static_cast<uint8_t *>(data);
    __sanitizer_cov_8bit_counters_init(counters, counters + length);
    g_pcs.assign(2 * length, 0);
    for (size_t i = 0; i < length; ++i) g_pcs[2 * i] = 0x1000 + i;   // (pc, flags) pairs
    __sanitizer_cov_pcs_init(g_pcs.data(), g_pcs.data() + g_pcs.size());

    g_env = env;
    check(napi_create_reference(env, args[2], 1, &g_target), "napi_create_reference");
    int    count  = static_cast<int>(argv.size()) - 1;
    char ** argvp = argv.data();
    const int status = LLVMFuzzerRunDriver(&count, &argvp, one_input);
    napi_value result = nullptr;
    check(napi_create_int32(env, status, &result), "napi_create_int32");
    return result;
}

napi_value init(napi_env env, napi_value exports) {
    napi_value fn = nullptr;
    check(napi_create_function(env, "run", NAPI_AUTO_LENGTH, run, nullptr, &fn), "napi_create_function");
    check(napi_set_named_property(env, exports, "run", fn), "napi_set_named_property");
    return exports;
}

}   // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
