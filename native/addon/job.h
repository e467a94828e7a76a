// One JS call = one native job: `run` executes on the model's compute thread (a libuv worker waits for it) — or,
// without one (a blocking call that belongs to no model: c10d rendezvous, barriers), on the libuv worker itself —
// `done` converts its results on the main thread, and the returned promise settles with that value or with the
// error's message.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include <napi.h>

#include <c10/util/Exception.h>

#include "compute_thread.h"

namespace petaddon {

class Job : public Napi::AsyncWorker {
 public:
  using Run = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  static Napi::Promise Start(Napi::Env env, std::shared_ptr<ComputeThread> compute, Run run, Done done) {
    auto* job = new Job(env, std::move(compute), std::move(run), std::move(done));
    Napi::Promise p = job->deferred_.Promise();
    job->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      if (compute_) compute_->Run(run_);
      else run_();
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());  // what() carries a long C++ backtrace
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(done_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(Env(), e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Job(Napi::Env env, std::shared_ptr<ComputeThread> compute, Run run, Done done)
      : Napi::AsyncWorker(env, "pet-mlm"), deferred_(Napi::Promise::Deferred::New(env)), compute_(std::move(compute)),
        run_(std::move(run)), done_(std::move(done)) {}

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ComputeThread> compute_;
  Run run_;
  Done done_;
};

// Runs `f` on the main thread, turning C++ and LibTorch exceptions into JS exceptions.
template <typename F>
auto Guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace petaddon
