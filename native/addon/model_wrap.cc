#include "model_wrap.h"

#include <cstring>
#include <thread>

#include <ATen/Parallel.h>

#include "convert.h"
#include "dist_wrap.h"
#include "job.h"
#include "model/classifier.h"
#include "model/model_family.h"
#include "model/scoring.h"

namespace petaddon {
namespace {

struct AddonData {
  Napi::FunctionReference model_ctor;
};

at::Device ParseDevice(const Napi::Env& env, const std::string& s) {
  if (s == "cpu") return at::Device(at::kCPU);
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    if (!at::hasCUDA())
      throw Napi::Error::New(env, "device '" + s +
                                      "' requested, but this build of LibTorch has no CUDA support "
                                      "or no CUDA device is visible; use device: 'cpu'");
    try {
      return at::Device(s);
    } catch (const c10::Error& e) {
      throw Napi::Error::New(env, "bad device '" + s + "': " + e.what_without_backtrace());
    }
  }
  throw Napi::TypeError::New(env, "device must be 'cpu', 'cuda' or 'cuda:N', got '" + s + "'");
}

Napi::Object StepToJs(Napi::Env env, const petcore::StepResult& r) {
  auto o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("vocabLoss", r.vocab_loss);
  o.Set("candLoss", r.cand_loss);
  o.Set("labelLoss", r.label_loss);
  o.Set("clsLoss", r.cls_loss);
  o.Set("gradNorm", r.grad_norm);
  o.Set("lr", r.lr);
  o.Set("step", static_cast<double>(r.step));
  o.Set("stopped", r.stopped);
  o.Set("allreduceMs", r.allreduce_ms);
  return o;
}

petcore::Batch CheckedBatch(const petcore::BertModel& m, const BatchTensors& t) {
  return m.check_batch(t.input_ids, t.token_type_ids, t.attention_mask, t.position_ids, t.branch_ids);
}

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeModel",
                                    {
                                        StaticMethod<&ModelWrap::Load>("load"),
                                        InstanceMethod<&ModelWrap::Info>("info"),
                                        InstanceMethod<&ModelWrap::ScoreCandidates>("scoreCandidates"),
                                        InstanceMethod<&ModelWrap::LogitsAt>("logitsAt"),
                                        InstanceMethod<&ModelWrap::HiddenStates>("hiddenStates"),
                                        InstanceMethod<&ModelWrap::SetTrainable>("setTrainable"),
                                        InstanceMethod<&ModelWrap::TrainStep>("trainStep"),
                                        InstanceMethod<&ModelWrap::LossAndGrads>("lossAndGrads"),
                                        InstanceMethod<&ModelWrap::Save>("save"),
                                        InstanceMethod<&ModelWrap::AddClassifier>("addClassifier"),
                                        InstanceMethod<&ModelWrap::InputRows>("inputRows"),
                                        InstanceMethod<&ModelWrap::SetInputRows>("setInputRows"),
                                        InstanceMethod<&ModelWrap::SetEmbeddingRows>("setEmbeddingRows"),
                                        InstanceMethod<&ModelWrap::PromptEncoderTensors>("promptEncoderTensors"),
                                        InstanceMethod<&ModelWrap::SaveTrainerState>("saveTrainerState"),
                                        InstanceMethod<&ModelWrap::LoadTrainerState>("loadTrainerState"),
                                        InstanceMethod<&ModelWrap::Classify>("classify"),
                                        InstanceMethod<&ModelWrap::TensorNames>("tensorNames"),
                                        InstanceMethod<&ModelWrap::GetTensor>("getTensor"),
                                        InstanceMethod<&ModelWrap::SetInferenceOptions>("setInferenceOptions"),
                                        InstanceMethod<&ModelWrap::Dispose>("dispose"),
                                    });
  auto* data = new AddonData();
  data->model_ctor = Napi::Persistent(ctor);
  env.SetInstanceData<AddonData>(data);
  return ctor;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  // Only Load() constructs, passing the loaded state through an External.
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "use NativeModel.load(dir, options) to create a model");
  state_ = *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
}

std::shared_ptr<ModelState> ModelWrap::Live(const Napi::Env& env) {
  if (!state_ || !state_->model) throw Napi::Error::New(env, "the model has been disposed");
  return state_;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected string model directory");
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::string device_name = "cpu";
  int64_t threads = 0;
  petcore::Precision precision = petcore::Precision::Fp32;
  bool tasks = true, onednn = petcore::onednn::compiled();
  if (info.Length() > 1 && info[1].IsObject()) {
    auto o = info[1].As<Napi::Object>();
    if (o.Get("device").IsString()) device_name = o.Get("device").As<Napi::String>().Utf8Value();
    threads = IntOption(o, "threads", 0, 0);
    precision = PrecisionOption(o, "precision", precision);
    const Napi::Value schedule = o.Get("schedule");
    if (!schedule.IsUndefined() && !schedule.IsNull()) {
      const std::string s = schedule.IsString() ? schedule.As<Napi::String>().Utf8Value() : "";
      if (s != "tasks" && s != "plain") throw Napi::TypeError::New(env, "Expected 'tasks' or 'plain' for schedule");
      tasks = s == "tasks";
    }
    onednn = KernelsOption(o, "kernels");
  }
  const at::Device device = ParseDevice(env, device_name);
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  auto state = std::make_shared<ModelState>();
  state->compute = std::make_shared<ComputeThread>(static_cast<int>(threads));
  state->precision = precision;
  return Job::Start(
      env, state->compute,
      [state, dir, device, tasks, onednn] {
        state->model = petcore::BertModel::load(dir, device);
        state->model->set_task_scheduling(tasks);
        state->model->set_onednn_kernels(onednn);
      },
      [state](Napi::Env env) -> Napi::Value {
        auto* data = env.GetInstanceData<AddonData>();
        return data->model_ctor.New({Napi::External<std::shared_ptr<ModelState>>::New(
            env, new std::shared_ptr<ModelState>(state), [](Napi::Env, std::shared_ptr<ModelState>* p) { delete p; })});
      });
}

Napi::Object ConfigToJs(Napi::Env env, const petcore::BertConfig& c) {
  auto cfg = Napi::Object::New(env);
  cfg.Set("family", petcore::family_name(c.family));
  cfg.Set("wordEmbeddings", petcore::model_names(c.family).word);
  cfg.Set("positionEmbeddings", petcore::model_names(c.family).position);
  cfg.Set("vocabSize", static_cast<double>(c.vocab_size));
  cfg.Set("hiddenSize", static_cast<double>(c.hidden_size));
  cfg.Set("embeddingSize", static_cast<double>(c.embedding_size));
  cfg.Set("positionOffset", static_cast<double>(c.position_offset));
  cfg.Set("numHiddenLayers", static_cast<double>(c.num_hidden_layers));
  cfg.Set("numAttentionHeads", static_cast<double>(c.num_attention_heads));
  cfg.Set("intermediateSize", static_cast<double>(c.intermediate_size));
  cfg.Set("maxPositionEmbeddings", static_cast<double>(c.max_position_embeddings));
  cfg.Set("typeVocabSize", static_cast<double>(c.type_vocab_size));
  cfg.Set("tieWordEmbeddings", c.tie_word_embeddings);
  cfg.Set("raw", c.raw.dump());
  return cfg;
}

Napi::Value ReadConfig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected a model directory");
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  try {
    return ConfigToJs(env, petcore::load_config(dir + "/config.json"));
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  const auto& m = *st->model;
  const auto& c = m.config();
  auto o = Napi::Object::New(env);
  o.Set("config", ConfigToJs(env, c));
  o.Set("device", m.device().str());
  o.Set("format", m.report().format);
  o.Set("files", ToStringArray(env, m.report().files));
  o.Set("unexpected", ToStringArray(env, m.report().unexpected));
  o.Set("ignored", ToStringArray(env, m.report().ignored));
  o.Set("threads", at::get_num_threads());
  o.Set("precision", petcore::precision_name(st->precision));
  o.Set("kernels", m.onednn_kernels() && m.device().is_cpu() ? "onednn" : "aten");
  return o;
}

Napi::Value ModelWrap::ScoreCandidates(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  BatchTensors bt = BatchFromJs(info[0]);
  at::Tensor pos = PositionsFromJs(info[1], "positions");
  at::Tensor cand = CandidatesFromJs(info[2], info[3], pos.size(0), "candidates");
  auto result = std::make_shared<petcore::CandidateScores>();
  const petcore::Precision precision = st->precision;  // read on the main thread, its only writer
  return Job::Start(
      env, st->compute,
      [st, bt, pos, cand, result, precision] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model) throw std::runtime_error("the model has been disposed");
        *result = petcore::score_candidates(*st->model, CheckedBatch(*st->model, bt), pos, cand, precision);
      },
      [result, pos](Napi::Env env) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("logits", ToFloat32Array(env, result->logits));
        o.Set("logZ", ToFloat32Array(env, result->log_z));
        o.Set("positions", static_cast<double>(pos.size(0)));
        o.Set("numCandidates", static_cast<double>(result->logits.size(1)));
        return o;
      });
}

Napi::Value ModelWrap::LogitsAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  BatchTensors bt = BatchFromJs(info[0]);
  at::Tensor pos = PositionsFromJs(info[1], "positions");
  auto result = std::make_shared<at::Tensor>();
  const petcore::Precision precision = st->precision;
  return Job::Start(
      env, st->compute,
      [st, bt, pos, result, precision] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model) throw std::runtime_error("the model has been disposed");
        *result = petcore::logits_at(*st->model, CheckedBatch(*st->model, bt), pos, precision);
      },
      [result](Napi::Env env) -> Napi::Value { return ToFloat32Array(env, *result); });
}

Napi::Value ModelWrap::HiddenStates(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  BatchTensors bt = BatchFromJs(info[0]);
  const std::string which = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "last";
  if (which != "last" && which != "embeddings")
    throw Napi::TypeError::New(env, "hiddenStates layer must be 'last' or 'embeddings'");
  auto result = std::make_shared<at::Tensor>();
  const petcore::Precision precision = st->precision;
  return Job::Start(
      env, st->compute,
      [st, bt, which, result, precision] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model) throw std::runtime_error("the model has been disposed");
        c10::InferenceMode guard;
        petcore::Batch b = CheckedBatch(*st->model, bt);
        const petcore::Precision p = petcore::kernel_precision(precision, st->model->device());
        *result = (which == "last" ? st->model->encode(b, false, nullptr, false, p) : st->model->embed(b, false))
                      .to(at::kCPU)
                      .contiguous();
      },
      [result](Napi::Env env) -> Napi::Value { return ToFloat32Array(env, *result); });
}

Napi::Value ModelWrap::SetTrainable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  petcore::TrainableSpec spec = TrainableFromJs(info[0]);
  petcore::OptimConfig cfg = OptimFromJs(info.Length() > 1 ? info[1] : env.Undefined());
  std::shared_ptr<petcore::DistGroup> group;
  if (info.Length() > 1 && info[1].IsObject() && info[1].As<Napi::Object>().Get("distributed").ToBoolean().Value()) {
    group = CurrentGroup();
    if (!group) throw Napi::Error::New(env, "distributed training: call distInit() before setTrainable()");
  }
  std::unique_lock<std::mutex> lock(st->mu, std::try_to_lock);
  if (!lock.owns_lock()) throw Napi::Error::New(env, "the model is busy with another job; await it first");
  return Guarded(env, [&] {
    st->trainer.reset();  // restores requires_grad before the new spec applies
    st->trainer = std::make_unique<petcore::Trainer>(*st->model, spec, cfg, group);
    return Napi::Number::New(env, static_cast<double>(st->trainer->trainable_numel()));
  });
}

Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  if (!st->trainer) throw Napi::Error::New(env, "call setTrainable() before trainStep()");
  // Distributed training: a null batch is an empty share of the global batch; { stop: true } asks every rank to
  // stop before this step.
  const bool empty = info.Length() > 0 && info[0].IsNull();
  const bool stop =
      info.Length() > 2 && info[2].IsObject() && info[2].As<Napi::Object>().Get("stop").ToBoolean().Value();
  BatchTensors bt;
  petcore::LossSpec loss;
  if (!empty) {
    bt = BatchFromJs(info[0]);
    loss = LossFromJs(info[1]);
  }
  auto result = std::make_shared<petcore::StepResult>();
  return Job::Start(
      env, st->compute,
      [st, bt, loss, empty, stop, result] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model || !st->trainer) throw std::runtime_error("the model has been disposed");
        if (empty) {
          *result = st->trainer->step(nullptr, nullptr, stop);
        } else {
          petcore::Batch b = CheckedBatch(*st->model, bt);
          *result = st->trainer->step(&b, &loss, stop);
        }
      },
      [result](Napi::Env env) -> Napi::Value { return StepToJs(env, *result); });
}

Napi::Value ModelWrap::LossAndGrads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  if (!st->trainer) throw Napi::Error::New(env, "call setTrainable() before lossAndGrads()");
  BatchTensors bt = BatchFromJs(info[0]);
  petcore::LossSpec loss = LossFromJs(info[1]);
  const bool train = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  auto result = std::make_shared<petcore::StepResult>();
  auto grads = std::make_shared<petcore::NamedTensors>();
  return Job::Start(
      env, st->compute,
      [st, bt, loss, train, result, grads] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model || !st->trainer) throw std::runtime_error("the model has been disposed");
        *result = st->trainer->loss_and_grads(CheckedBatch(*st->model, bt), loss, train, grads.get());
      },
      [result, grads](Napi::Env env) -> Napi::Value {
        auto o = StepToJs(env, *result);
        auto g = Napi::Object::New(env);
        for (const auto& [name, t] : *grads) g.Set(name, ToFloat32Array(env, t));
        o.Set("grads", g);
        return o;
      });
}

Napi::Value ModelWrap::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected string output directory");
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  int64_t shard = 0;
  if (info.Length() > 1 && info[1].IsObject()) shard = IntOption(info[1].As<Napi::Object>(), "maxShardBytes", 0, 0);
  return Job::Start(
      env, st->compute,
      [st, dir, shard] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model) throw std::runtime_error("the model has been disposed");
        st->model->save(dir, static_cast<uint64_t>(shard));
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

namespace {
// saveTrainerState / loadTrainerState: a path argument, then `op` on the trainer in a job.
Napi::Value TrainerFileJob(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& st,
                           void (*op)(petcore::Trainer&, const std::string&)) {
  Napi::Env env = info.Env();
  if (!st->trainer) throw Napi::Error::New(env, "call setTrainable() first");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected string path");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  return Job::Start(
      env, st->compute,
      [st, path, op] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->trainer) throw std::runtime_error("the model has been disposed");
        op(*st->trainer, path);
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}
}  // namespace

Napi::Value ModelWrap::SaveTrainerState(const Napi::CallbackInfo& info) {
  return TrainerFileJob(info, Live(info.Env()), [](petcore::Trainer& t, const std::string& p) { t.save_state(p); });
}

Napi::Value ModelWrap::LoadTrainerState(const Napi::CallbackInfo& info) {
  return TrainerFileJob(info, Live(info.Env()), [](petcore::Trainer& t, const std::string& p) { t.load_state(p); });
}

namespace {
std::unique_lock<std::mutex> Idle(const Napi::Env& env, ModelState& st) {
  std::unique_lock<std::mutex> lock(st.mu, std::try_to_lock);
  if (!lock.owns_lock()) throw Napi::Error::New(env, "the model is busy with another job; await it first");
  return lock;
}

std::pair<at::Tensor, at::Tensor> RowsFromJs(const Napi::CallbackInfo& info, int64_t hidden) {
  at::Tensor rows = IntTensor(info[0], "rows", -1, 0);
  at::Tensor values = FloatTensor(info[1], "values", rows.numel(), hidden);
  return {rows, values};
}
}  // namespace

Napi::Value ModelWrap::InputRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  auto lock = Idle(env, *st);
  const auto& m = *st->model;
  if (!m.input_rows().defined()) return env.Null();
  auto o = Napi::Object::New(env);
  at::Tensor rows = m.input_rows().to(at::kCPU, at::kInt).contiguous();
  auto r = Napi::Int32Array::New(env, rows.numel());
  std::memcpy(r.Data(), rows.data_ptr<int32_t>(), sizeof(int32_t) * rows.numel());
  o.Set("rows", r);
  o.Set("values", ToFloat32Array(env, m.input_values()));
  return o;
}

Napi::Value ModelWrap::SetInputRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  auto lock = Idle(env, *st);
  return Guarded(env, [&]() -> Napi::Value {
    if (info[0].IsNull() || info[0].IsUndefined()) {
      st->model->set_input_rows({}, {});
    } else {
      auto [rows, values] = RowsFromJs(info, st->model->config().embedding_size);
      st->model->set_input_rows(rows, values);
    }
    return env.Undefined();
  });
}

Napi::Value ModelWrap::SetEmbeddingRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  auto lock = Idle(env, *st);
  return Guarded(env, [&]() -> Napi::Value {
    auto [rows, values] = RowsFromJs(info, st->model->config().embedding_size);
    st->model->set_embedding_rows(rows, values);
    return env.Undefined();
  });
}

Napi::Value ModelWrap::PromptEncoderTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  auto lock = Idle(env, *st);
  auto o = Napi::Object::New(env);
  if (!st->trainer) return o;
  for (const auto& [name, t] : st->trainer->prompt_encoder_tensors()) {
    auto e = Napi::Object::New(env);
    auto shape = Napi::Array::New(env, t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), static_cast<double>(t.size(i)));
    e.Set("shape", shape);
    e.Set("data", ToFloat32Array(env, t));
    o.Set(name, e);
  }
  return o;
}

Napi::Value ModelWrap::AddClassifier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "Expected integer number of labels");
  const int64_t labels = info[0].As<Napi::Number>().Int64Value();
  const int64_t seed = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int64Value()
                                                               : static_cast<int64_t>(petcore::kDefaultSeed);
  std::unique_lock<std::mutex> lock(st->mu, std::try_to_lock);
  if (!lock.owns_lock()) throw Napi::Error::New(env, "the model is busy with another job; await it first");
  if (st->trainer) throw Napi::Error::New(env, "add the classifier before setTrainable()");
  return Guarded(env, [&] {
    return Napi::Boolean::New(env, petcore::ensure_classifier(*st->model, labels, static_cast<uint64_t>(seed)));
  });
}

Napi::Value ModelWrap::Classify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  BatchTensors bt = BatchFromJs(info[0]);
  auto result = std::make_shared<at::Tensor>();
  const petcore::Precision precision = st->precision;
  return Job::Start(
      env, st->compute,
      [st, bt, result, precision] {
        std::lock_guard<std::mutex> lock(st->mu);
        if (!st->model) throw std::runtime_error("the model has been disposed");
        *result = petcore::classify(*st->model, CheckedBatch(*st->model, bt), precision);
      },
      [result](Napi::Env env) -> Napi::Value { return ToFloat32Array(env, *result); });
}

Napi::Value ModelWrap::TensorNames(const Napi::CallbackInfo& info) {
  auto st = Live(info.Env());
  std::vector<std::string> names;
  for (const auto& [name, t] : st->model->params()) names.push_back(name);
  return ToStringArray(info.Env(), names);
}

Napi::Value ModelWrap::GetTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto st = Live(env);
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "Expected string tensor name");
  std::unique_lock<std::mutex> lock(st->mu, std::try_to_lock);
  if (!lock.owns_lock()) throw Napi::Error::New(env, "the model is busy with another job; await it first");
  return Guarded(env, [&]() -> Napi::Value {
    const at::Tensor& t = st->model->param(info[0].As<Napi::String>().Utf8Value());
    auto o = Napi::Object::New(env);
    auto shape = Napi::Array::New(env, t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), static_cast<double>(t.size(i)));
    o.Set("shape", shape);
    o.Set("data", ToFloat32Array(env, t.detach()));
    return o;
  });
}

Napi::Value ModelWrap::SetInferenceOptions(const Napi::CallbackInfo& info) {
  auto st = Live(info.Env());
  if (info.Length() > 0 && info[0].IsObject()) {
    auto o = info[0].As<Napi::Object>();
    if (o.Get("bf16").IsBoolean())
      st->precision = o.Get("bf16").As<Napi::Boolean>().Value() ? petcore::Precision::Bf16 : petcore::Precision::Fp32;
    st->precision = PrecisionOption(o, "precision", st->precision);
  }
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo& info) {
  if (state_) {
    auto st = state_;
    std::lock_guard<std::mutex> lock(st->mu);  // waits for a running job
    st->trainer.reset();
    st->model.reset();
  }
  return info.Env().Undefined();
}

}  // namespace petaddon
