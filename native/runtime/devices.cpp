#include "runtime/devices.h"

#include "util/error.h"

#include "ggml-backend.h"

#include <algorithm>
#include <cctype>

#if defined(GPT2_NODE_VULKAN)
#include <vulkan/vulkan.h>
#endif

namespace gpt2 {

namespace {

// The names of the Vulkan devices that run on the CPU (Mesa's lavapipe, SwiftShader), asked of
// Vulkan once: ggml-vulkan lists such a device (when GGML_VK_VISIBLE_DEVICES names it) as a GPU,
// but it is slower than our CPU path, and installed on many Linux desktops, so 'auto' must not
// take it. ggml's description of a Vulkan device is its Vulkan device name.
bool vulkan_device_runs_on_cpu(const std::string & description) {
#if defined(GPT2_NODE_VULKAN)
    static const std::vector<std::string> cpu_devices = [] {
        std::vector<std::string> names;
        VkApplicationInfo        app{};
        app.sType      = VK_STRUCTURE_TYPE_APPLICATION_INFO;
        app.apiVersion = VK_API_VERSION_1_0;
        VkInstanceCreateInfo ci{};
        ci.sType            = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
        ci.pApplicationInfo = &app;
        VkInstance inst     = VK_NULL_HANDLE;
        if (vkCreateInstance(&ci, nullptr, &inst) != VK_SUCCESS) return names;
        uint32_t n = 0;
        vkEnumeratePhysicalDevices(inst, &n, nullptr);
        std::vector<VkPhysicalDevice> devs(n);
        if (n > 0 && vkEnumeratePhysicalDevices(inst, &n, devs.data()) >= VK_SUCCESS) {
            for (uint32_t i = 0; i < n; ++i) {
                VkPhysicalDeviceProperties p{};
                vkGetPhysicalDeviceProperties(devs[i], &p);
                if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) names.emplace_back(p.deviceName);
            }
        }
        vkDestroyInstance(inst, nullptr);
        return names;
    }();
    return std::find(cpu_devices.begin(), cpu_devices.end(), description) != cpu_devices.end();
#else
    (void) description;
    return false;
#endif
}

// Our lower-case backend name for a ggml registry name ("MTL" is Metal's).
std::string backend_kind(ggml_backend_dev_t dev) {
    std::string reg = ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev));
    std::transform(reg.begin(), reg.end(), reg.begin(), [](unsigned char c) { return (char) std::tolower(c); });
    if (reg == "mtl") return "metal";
    return reg;
}

const char * type_name(enum ggml_backend_dev_type t) {
    switch (t) {
    case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
    case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
    case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
    default: return "accel";
    }
}

struct entry {
    ggml_backend_dev_t dev;
    device_info        info;
};

std::vector<entry> enumerate() {
    std::vector<entry>                       out;
    std::vector<std::pair<std::string, int>> counts;   // per backend kind, for the ids
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t               dev  = ggml_backend_dev_get(i);
        const enum ggml_backend_dev_type type = ggml_backend_dev_type(dev);
        if (type == GGML_BACKEND_DEVICE_TYPE_META) continue;
        device_info d;
        d.backend = backend_kind(dev);
        auto it   = std::find_if(counts.begin(), counts.end(), [&](auto & c) { return c.first == d.backend; });
        if (it == counts.end()) it = counts.insert(counts.end(), { d.backend, 0 });
        d.id = d.backend == "cpu" ? "cpu" : d.backend + ":" + std::to_string(it->second);
        ++it->second;
        d.name        = ggml_backend_dev_name(dev);
        d.description = ggml_backend_dev_description(dev);
        d.type        = d.backend == "vulkan" && vulkan_device_runs_on_cpu(d.description) ? "cpu" : type_name(type);
        ggml_backend_dev_memory(dev, &d.memory_free, &d.memory_total);
        out.push_back({ dev, std::move(d) });
    }
    return out;
}

}   // namespace

std::vector<device_info> devices_list() {
    std::vector<device_info> out;
    for (auto & e : enumerate()) out.push_back(std::move(e.info));
    return out;
}

device_choice device_select(const std::string & spec) {
    const std::vector<entry> all = enumerate();
    if (spec == "auto") {
        for (const char * want : { "gpu", "igpu" }) {
            for (const auto & e : all)
                if (e.info.type == want) return { e.dev, e.info.id, false };
        }
        return {};
    }
    if (spec == "cpu") return { nullptr, "cpu", true };

    std::string kind = spec, index = "0";
    if (const size_t colon = spec.find(':'); colon != std::string::npos) {
        kind  = spec.substr(0, colon);
        index = spec.substr(colon + 1);
    }
    const bool known = kind == "cuda" || kind == "metal" || kind == "vulkan";
    if (!known || index.empty() || index.size() > 3 || !std::all_of(index.begin(), index.end(), ::isdigit)) {
        throw range_error("Expected 'auto', 'cpu', 'cuda', 'cuda:N', 'metal' or 'vulkan' for device but received \"" + spec + "\"");
    }
    const std::string id = kind + ":" + std::to_string(std::stoi(index));
    for (const auto & e : all)
        if (e.info.id == id) return { e.dev, id, true };

    std::string have;
    for (const auto & e : all) have += (have.empty() ? "" : ", ") + e.info.id;
    const bool built = std::any_of(all.begin(), all.end(), [&](const entry & e) { return e.info.backend == kind; });
    throw error(codes::no_device,
                "device " + spec + " is not available: " +
                    (built ? "this machine has no such " + kind + " device" +
                             (kind == "vulkan" ? " (ggml lists a Vulkan device that runs on the CPU, such as lavapipe, only when "
                                                 "GGML_VK_VISIBLE_DEVICES names it)"
                                               : "")
                           : "this build has no " + kind + " backend (rebuild with GPT2_NODE_GPU=" + kind + " npm install)") +
                    "; available: " + have);
}

}   // namespace gpt2
