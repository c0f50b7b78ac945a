// safetensors: the header reader alone, then a whole Hugging Face folder load around it; or the
// shard index (model.safetensors.index.json) of a folder whose one shard is valid. The first
// input byte picks which (even: the input is model.safetensors; odd: it is the index), the rest
// is the file. The folder's config.json, vocab.json and merges.txt are the micro GPT-2's, copied
// from GPT2_FUZZ_HF_FOLDER (scripts/fuzz.mjs points it at the seeds test/fuzz/seeds.ts writes).
#include "fuzz_support.h"

#include "gpt/model.h"
#include "io/safetensors_reader.h"

#include <sys/stat.h>

namespace {

struct folders {
    std::string weights;   // config + tokenizer; the input becomes model.safetensors
    std::string sharded;   // config + tokenizer + one valid shard; the input becomes the index
};

const folders & setup() {
    static const folders f = [] {
        const char * src = std::getenv("GPT2_FUZZ_HF_FOLDER");
        if (!src || !*src) {
            std::fprintf(stderr, "set GPT2_FUZZ_HF_FOLDER to the micro model's Hugging Face folder (scripts/fuzz.mjs does)\n");
            std::abort();
        }
        folders out{ fuzz::scratch_dir() + "/weights", fuzz::scratch_dir() + "/sharded" };
        for (const std::string & dir : { out.weights, out.sharded }) {
            mkdir(dir.c_str(), 0700);
            for (const char * name : { "config.json", "vocab.json", "merges.txt" }) {
                const std::string bytes = fuzz::read_file(std::string(src) + "/" + name);
                fuzz::write_file(dir.substr(fuzz::scratch_dir().size() + 1) + "/" + name, reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
            }
        }
        const std::string shard = fuzz::read_file(std::string(src) + "/model.safetensors");
        fuzz::write_file("sharded/model-00001-of-00001.safetensors", reinterpret_cast<const uint8_t *>(shard.data()), shard.size());
        return out;
    }();
    return f;
}

}   // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (size == 0) return 0;
    const folders & f = setup();
    if ((data[0] & 1) == 0) {
        const std::string path = fuzz::write_file("weights/model.safetensors", data + 1, size - 1);
        fuzz::expect_documented_errors([&] { gpt2::safetensors_file file(path); });
        fuzz::expect_documented_errors([&] { gpt2::model_load_hf(f.weights); });
    } else {
        fuzz::write_file("sharded/model.safetensors.index.json", data + 1, size - 1);
        fuzz::expect_documented_errors([&] { gpt2::model_load_hf(f.sharded); });
    }
    return 0;
}
