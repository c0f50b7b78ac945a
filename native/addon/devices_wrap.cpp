#include "addon/devices_wrap.h"

#include "addon/errors.h"
#include "runtime/devices.h"

namespace gpt2::addon {

namespace {

class devices_worker : public Napi::AsyncWorker {
public:
    explicit devices_worker(Napi::Env env) : Napi::AsyncWorker(env, "gpt2-node:devices"), deferred_(Napi::Promise::Deferred::New(env)) {}
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
        try {
            devices_ = devices_list();
        } catch (const gpt2::error & e) {
            code_    = e.code();
            message_ = e.what();
        } catch (const std::exception & e) {
            code_    = codes::internal;
            message_ = e.what();
        }
    }

    void OnOK() override {
        settle(deferred_, [&] {
            Napi::Env env = Env();
            if (!code_.empty()) {
                deferred_.Reject(to_js_error(env, code_, message_).Value());
                return;
            }
            Napi::Array a = Napi::Array::New(env, devices_.size());
            for (size_t i = 0; i < devices_.size(); ++i) {
                const device_info & d = devices_[i];
                Napi::Object        o = Napi::Object::New(env);
                o.Set("id", d.id);
                o.Set("name", d.name);
                o.Set("description", d.description);
                o.Set("backend", d.backend);
                o.Set("type", d.type);
                o.Set("memoryFree", (double) d.memory_free);
                o.Set("memoryTotal", (double) d.memory_total);
                a.Set((uint32_t) i, o);
            }
            deferred_.Resolve(a);
        });
    }

    void OnError(const Napi::Error & e) override {
        settle(deferred_, [&] { deferred_.Reject(e.Value()); });
    }

private:
    Napi::Promise::Deferred  deferred_;
    std::vector<device_info> devices_;
    std::string              code_, message_;
};

Napi::Value get_devices(const Napi::CallbackInfo & info) {
    auto *        w = new devices_worker(info.Env());
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
}

}   // namespace

void devices_init(Napi::Env env, Napi::Object exports) { exports.Set("getDevices", Napi::Function::New(env, get_devices, "getDevices")); }

}   // namespace gpt2::addon
