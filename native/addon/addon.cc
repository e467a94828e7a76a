// Module entry: the NativeModel class and a few process-wide LibTorch settings.
#include <napi.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include "convert.h"
#include "dist_wrap.h"
#include "job.h"
#include "kernels/gemm_probe.h"
#include "kernels/onednn_primitives.h"
#include "model_wrap.h"

namespace petaddon {
namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().Int32Value() < 1)
    throw Napi::TypeError::New(info.Env(), "Expected integer >= 1 for threads");
  at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value CudaAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), at::hasCUDA()); }

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected integer seed");
  at::manual_seed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

// gemmRate({ rows, in, out, precision, threads, kernels }) -> GFLOP/s of that linear layer on `threads` cores
// through the layer kernel's dense step on `kernels` ('onednn', the default where compiled, or 'aten'), as a model
// loaded with that option runs it (synchronous: for the benchmark's own process).
Napi::Value GemmRate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected options object");
  auto o = info[0].As<Napi::Object>();
  const int64_t rows = IntOption(o, "rows", 512, 1), in = IntOption(o, "in", 256, 1),
                out = IntOption(o, "out", 1024, 1);
  if (rows * in + in * out + rows * out > (int64_t{1} << 26))
    throw Napi::TypeError::New(env, "GEMM too large for a probe");
  const petcore::Precision p = PrecisionOption(o, "precision", petcore::Precision::Fp32);
  const int threads = static_cast<int>(IntOption(o, "threads", at::get_num_threads(), 1));
  const bool onednn = KernelsOption(o, "kernels");
  try {
    return Napi::Number::New(env, petcore::gemm_gflops(rows, in, out, p, threads, onednn));
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

}  // namespace
}  // namespace petaddon

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace petaddon;
  exports.Set("NativeModel", ModelWrap::Define(env));
  exports.Set("readConfig", Napi::Function::New(env, ReadConfig));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("gemmRate", Napi::Function::New(env, GemmRate));
  exports.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  exports.Set("onednnVersion", Napi::String::New(env, petcore::onednn::version()));
  exports.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  exports.Set("configInfo", Napi::String::New(env, at::show_config()));
  RegisterDist(env, exports);
  return exports;
}

NODE_API_MODULE(pet_mlm, Init)
