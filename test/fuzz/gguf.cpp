// GGUF: ggml's parser behind our reader (gguf_reader's own pre-scan of the tensor infos first),
// then every GPT-2 check a load makes (hyperparameters, tensor shapes and types, the
// vocabulary). Seeds: a micro GPT-2 GGUF (test/fuzz/seeds.ts).
#include "fuzz_support.h"

#include "gpt/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    const std::string path = fuzz::write_file("input.gguf", data, size);
    fuzz::expect_documented_errors([&] { gpt2::model_load_gguf(path); });
    return 0;
}
