// The compute devices ggml's backends offer in this build (the CPU always; CUDA, Metal or
// Vulkan devices when built in and present), and the `device` option's resolution to one of
// them. Not here: placing weights (decoder.cpp) or N-API (addon/).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

struct ggml_backend_device;

namespace gpt2 {

struct device_info {
    std::string id;            // what the `device` option takes: "cpu", "cuda:0", "metal:0", "vulkan:1"
    std::string name;          // ggml's device name ("CPU", "CUDA0", "MTL0", "Vulkan0")
    std::string description;   // e.g. the GPU's model name
    std::string backend;       // "cpu", "cuda", "metal", "vulkan", ...
    std::string type;          // "cpu" (also a device that runs on it: lavapipe), "gpu", "igpu" (integrated: shares host memory), "accel"
    size_t      memory_free  = 0;
    size_t      memory_total = 0;
};

std::vector<device_info> devices_list();

struct device_choice {
    ggml_backend_device * dev       = nullptr;   // nullptr: the CPU
    std::string           id        = "cpu";
    bool                  requested = false;   // the user named this device (no silent fallback)
};

// spec: "auto" (the first GPU, else the first integrated GPU, else the CPU; never a device that
// runs on the CPU), "cpu", "<backend>"
// (its first device) or "<backend>:<index>". Throws range_error for a malformed spec and
// ERR_NO_DEVICE, listing what is available, for a device this build or machine does not have.
device_choice device_select(const std::string & spec);

}   // namespace gpt2
