#include "dist_wrap.h"

#include <cstring>
#include <functional>
#include <mutex>
#include <string>

#include <c10/util/Exception.h>

namespace petaddon {
namespace {

std::mutex group_mu;
// Deliberately never destroyed: a group whose peer died may hold Gloo threads that cannot be joined, and the
// process must still be able to exit with its error.
std::shared_ptr<petcore::DistGroup>* group_slot = new std::shared_ptr<petcore::DistGroup>();

// Runs a blocking c10d call (rendezvous, barrier) on a libuv worker, never on the event loop.
class DistWorker : public Napi::AsyncWorker {
 public:
  using Run = std::function<void()>;
  static Napi::Promise Start(Napi::Env env, Run run) {
    auto* w = new DistWorker(env, std::move(run));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      run_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error in distributed setup");
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  DistWorker(Napi::Env env, Run run)
      : Napi::AsyncWorker(env, "pet-mlm-dist"), deferred_(Napi::Promise::Deferred::New(env)), run_(std::move(run)) {}
  Napi::Promise::Deferred deferred_;
  Run run_;
};

// As DistWorker, resolving with the (reduced) buffer as a Float64Array.
class DistResultWorker : public Napi::AsyncWorker {
 public:
  DistResultWorker(Napi::Env env, std::function<void()> run, std::shared_ptr<at::Tensor> buf)
      : Napi::AsyncWorker(env, "pet-mlm-dist"), deferred_(Napi::Promise::Deferred::New(env)), run_(std::move(run)),
        buf_(std::move(buf)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      run_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    auto out = Napi::Float64Array::New(Env(), static_cast<size_t>(buf_->numel()));
    if (buf_->numel() > 0) std::memcpy(out.Data(), buf_->data_ptr<double>(), sizeof(double) * buf_->numel());
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> run_;
  std::shared_ptr<at::Tensor> buf_;
};

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
  return DistWorker::Start(env, [d] {
    auto g = petcore::DistGroup::create(d);
    std::lock_guard<std::mutex> lock(group_mu);
    *group_slot = g;
  });
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  auto g = CurrentGroup();
  if (!g) throw Napi::Error::New(info.Env(), "distBarrier: call distInit first");
  return DistWorker::Start(info.Env(), [g] { g->barrier(); });
}

// Sums a Float64Array over the ranks (sharded scoring: each rank fills its examples' rows, zeros elsewhere; adding
// exact zeros in fp64 changes no bit). Resolves with a new Float64Array.
Napi::Value DistAllReduceSum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = CurrentGroup();
  if (!g) throw Napi::Error::New(env, "distAllReduceSum: call distInit first");
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "distAllReduceSum: Expected Float64Array");
  auto in = info[0].As<Napi::Float64Array>();
  auto buf = std::make_shared<at::Tensor>(at::empty({static_cast<int64_t>(in.ElementLength())}, at::kDouble));
  if (in.ElementLength() > 0) std::memcpy(buf->data_ptr<double>(), in.Data(), sizeof(double) * in.ElementLength());
  auto* w = new DistResultWorker(env, [g, buf] { g->allreduce_sum(*buf); }, buf);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
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
