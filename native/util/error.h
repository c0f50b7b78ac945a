// The project's native error: a stable string code (ERR_BAD_MODEL, ...) plus a message.
// The addon turns it into the JS Gpt2Error with the same code; `kind` picks TypeError/RangeError
// for argument errors so that C++ re-checks of user input surface like the TS checks do.
#pragma once

#include <stdexcept>
#include <string>

namespace gpt2 {

// Every code, the same list as GPT2_ERROR_CODES in lib/errors.ts and the table in
// docs/api.md#error-codes (test/api/errors.test.ts keeps the three equal). Throw sites name
// these, never a string literal. Some are used by lib/ only (the hub, the server, the binding's
// loader); they are listed here so that the two lists stay one.
namespace codes {
inline constexpr const char * aborted            = "ERR_ABORTED";
inline constexpr const char * ambiguous          = "ERR_AMBIGUOUS";
inline constexpr const char * auth               = "ERR_AUTH";
inline constexpr const char * backend            = "ERR_BACKEND";
inline constexpr const char * bad_model          = "ERR_BAD_MODEL";
inline constexpr const char * busy               = "ERR_BUSY";
inline constexpr const char * checksum           = "ERR_CHECKSUM";
inline constexpr const char * compute            = "ERR_COMPUTE";
inline constexpr const char * concurrent_next    = "ERR_CONCURRENT_NEXT";
inline constexpr const char * context_full       = "ERR_CONTEXT_FULL";
inline constexpr const char * disposed           = "ERR_DISPOSED";
inline constexpr const char * download           = "ERR_DOWNLOAD";
inline constexpr const char * incompatible_model = "ERR_INCOMPATIBLE_MODEL";
inline constexpr const char * internal           = "ERR_INTERNAL";
inline constexpr const char * io                 = "ERR_IO";
inline constexpr const char * not_found          = "ERR_NOT_FOUND";
inline constexpr const char * not_listening      = "ERR_NOT_LISTENING";
inline constexpr const char * no_binary          = "ERR_NO_BINARY";
inline constexpr const char * no_device          = "ERR_NO_DEVICE";
inline constexpr const char * out_of_memory      = "ERR_OUT_OF_MEMORY";
inline constexpr const char * out_of_range       = "ERR_OUT_OF_RANGE";   // the code of a native RangeError
}   // namespace codes

enum class error_kind { coded, type, range };

class error : public std::runtime_error {
public:
    error(std::string code, const std::string & message, error_kind kind = error_kind::coded)
        : std::runtime_error(message), code_(std::move(code)), kind_(kind) {}

    const std::string & code() const { return code_; }
    error_kind          kind() const { return kind_; }

private:
    std::string code_;
    error_kind  kind_;
};

// ERR_BAD_MODEL naming the file and the failed check.
inline error bad_model(const std::string & path, const std::string & what) { return error(codes::bad_model, path + ": " + what); }

// A RangeError in JS, with the code ERR_OUT_OF_RANGE.
inline error range_error(const std::string & message) { return error(codes::out_of_range, message, error_kind::range); }

// The message shape of lib/validate.ts integer(), for the range checks the native side keeps:
//   Expected integer between 0 and 50256 for prompt[3] but received 70000
// `got` is the received value as a message shows it (addon::describe() of a JS value).
inline std::string expected_integer(const std::string & name, long long lo, long long hi, const std::string & got) {
    return "Expected integer between " + std::to_string(lo) + " and " + std::to_string(hi) + " for " + name + " but received " + got;
}

inline std::string expected_integer(const std::string & name, long long lo, long long hi, long long got) {
    return expected_integer(name, lo, hi, std::to_string(got));
}

}   // namespace gpt2
