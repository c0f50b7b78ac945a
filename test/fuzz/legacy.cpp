// Legacy ggml GPT-2 files (before GGUF): our reader, then the load (vocabulary with its merges
// recovered from token order, tensors converted into GGUF names and checked). Seeds: the micro
// GPT-2 written in this format (test/fuzz/seeds.ts).
#include "fuzz_support.h"

#include "gpt/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string path = fuzz::write_file("input.bin", data, size);
    fuzz::expect_documented_errors([&] { gpt2::model_load_legacy(path); });
    return 0;
}
