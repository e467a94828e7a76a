#include "dist_wrap.h"

#include <cstring>
#include <functional>
#include <mutex>
#include <string>

#include <c10/util/Exception.h>

#include "job.h"

namespace petaddon {
namespace {

std::mutex group_mu;
// Deliberately never destroyed: a group whose peer died may hold Gloo threads that cannot be joined, and the
// process must still be able to exit with its error.
std::shared_ptr<petcore::DistGroup>* group_slot = new std::shared_ptr<petcore::DistGroup>();

// A blocking c10d call (rendezvous, barrier, all-reduce) runs as a Job without a compute thread: on a libuv
// worker, never on the event loop.
Napi::Value Undefined(Napi::Env env) { return env.Undefined(); }

int64_t Int(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("distInit: Expected integer for ") + key);
  return v.As<Napi::Number>().Int64Value();
}

Napi::Value DistInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "distInit: Expected options object");
  auto o = info[0].As<Napi::Object>();
  petcore::DistOptions d;
  d.rank = static_cast<int>(Int(o, "rank"));
  d.world_size = static_cast<int>(Int(o, "worldSize"));
  d.master_port = static_cast<int>(Int(o, "masterPort"));
  d.timeout_ms = Int(o, "timeoutMs");
  if (!o.Get("masterAddr").IsString()) throw Napi::TypeError::New(env, "distInit: Expected string masterAddr");
  d.master_addr = o.Get("masterAddr").As<Napi::String>().Utf8Value();
  {
    std::lock_guard<std::mutex> lock(group_mu);
    if (*group_slot) throw Napi::Error::New(env, "distInit: this process already joined a process group");
  }
  return Job::Start(
      env, nullptr,
      [d] {
        auto g = petcore::DistGroup::create(d);
        std::lock_guard<std::mutex> lock(group_mu);
        *group_slot = g;
      },
      Undefined);
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  auto g = CurrentGroup();
  if (!g) throw Napi::Error::New(info.Env(), "distBarrier: call distInit first");
  return Job::Start(
      info.Env(), nullptr, [g] { g->barrier(); }, Undefined);
}

// Sums a Float64Array over the ranks (sharded scoring: each rank fills its examples' rows, zeros elsewhere; adding
// exact zeros in fp64 changes no bit). Resolves with a new Float64Array.
Napi::Value DistAllReduceSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = CurrentGroup();
  if (!g) throw Napi::Error::New(env, "distAllReduceSum: call distInit first");
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "distAllReduceSum: Expected Float64Array");
  auto in = info[0].As<Napi::Float64Array>();
  auto buf = std::make_shared<at::Tensor>(at::empty({static_cast<int64_t>(in.ElementLength())}, at::kDouble));
  if (in.ElementLength() > 0) std::memcpy(buf->data_ptr<double>(), in.Data(), sizeof(double) * in.ElementLength());
  return Job::Start(
      env, nullptr, [g, buf] { g->allreduce_sum(*buf); },
      [buf](Napi::Env env) -> Napi::Value {
        auto out = Napi::Float64Array::New(env, static_cast<size_t>(buf->numel()));
        if (buf->numel() > 0) std::memcpy(out.Data(), buf->data_ptr<double>(), sizeof(double) * buf->numel());
        return out;
      });
}

Napi::Value DistInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("available", petcore::DistGroup::available());
  o.Set("reason", petcore::DistGroup::unavailable_reason());
  auto g = CurrentGroup();
  o.Set("initialized", static_cast<bool>(g));
  if (g) {
    o.Set("rank", g->rank());
    o.Set("worldSize", g->world_size());
    o.Set("broken", g->broken());
  }
  return o;
}

}  // namespace

std::shared_ptr<petcore::DistGroup> CurrentGroup() {
  std::lock_guard<std::mutex> lock(group_mu);
  return *group_slot;
}

void RegisterDist(Napi::Env env, Napi::Object exports) {
  exports.Set("distInit", Napi::Function::New(env, DistInit));
  exports.Set("distBarrier", Napi::Function::New(env, DistBarrier));
  exports.Set("distInfo", Napi::Function::New(env, DistInfo));
  exports.Set("distAllReduceSum", Napi::Function::New(env, DistAllReduceSum));
}

}  // namespace petaddon
