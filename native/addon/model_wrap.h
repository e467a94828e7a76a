// The JS `NativeModel` class: glue only. Each method validates its arguments, copies inputs, and hands the work
// to the core on a worker thread; the model is shared with running jobs and guarded by one mutex.
#pragma once
#include <memory>
#include <mutex>

#include <napi.h>

#include "compute_thread.h"
#include "model/bert_model.h"
#include "train/trainer.h"

namespace petaddon {

// A config.json's family and sizes as the JS object NativeModelInfo.config (also without loading any weights).
Napi::Object ConfigToJs(Napi::Env env, const petcore::BertConfig& c);
// readConfig(dir): dir/config.json read and checked as a model load reads it, no weights.
Napi::Value ReadConfig(const Napi::CallbackInfo& info);

struct ModelState {
  std::mutex mu;
  std::unique_ptr<petcore::BertModel> model;
  std::unique_ptr<petcore::Trainer> trainer;
  petcore::Precision precision = petcore::Precision::Fp32;  // of inference (scoring, logits, classify)
  std::shared_ptr<ComputeThread> compute;                   // runs every job of this model
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static Napi::Value Load(const Napi::CallbackInfo& info);  // NativeModel.load(dir, options) -> Promise
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<ModelState> Live(const Napi::Env& env);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value ScoreCandidates(const Napi::CallbackInfo& info);
  Napi::Value LogitsAt(const Napi::CallbackInfo& info);
  Napi::Value HiddenStates(const Napi::CallbackInfo& info);
  Napi::Value SetTrainable(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  Napi::Value LossAndGrads(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value SaveTrainerState(const Napi::CallbackInfo& info);
  Napi::Value LoadTrainerState(const Napi::CallbackInfo& info);
  Napi::Value InputRows(const Napi::CallbackInfo& info);
  Napi::Value SetInputRows(const Napi::CallbackInfo& info);
  Napi::Value SetEmbeddingRows(const Napi::CallbackInfo& info);
  Napi::Value PromptEncoderTensors(const Napi::CallbackInfo& info);
  Napi::Value AddClassifier(const Napi::CallbackInfo& info);
  Napi::Value Classify(const Napi::CallbackInfo& info);
  Napi::Value TensorNames(const Napi::CallbackInfo& info);
  Napi::Value GetTensor(const Napi::CallbackInfo& info);
  Napi::Value SetInferenceOptions(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelState> state_;
};

}  // namespace petaddon
