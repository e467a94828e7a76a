#include "convert.h"

#include <cmath>
#include <cstring>

#include "kernels/onednn_primitives.h"

namespace petaddon {
namespace {

[[noreturn]] void type_error(const Napi::Env& env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

}  // namespace

int64_t IntOption(const Napi::Object& o, const char* key, int64_t fallback, int64_t min_value) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) type_error(o.Env(), std::string("Expected integer for ") + key);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min_value))
    type_error(o.Env(), std::string("Expected integer >= ") + std::to_string(min_value) + " for " + key);
  return static_cast<int64_t>(d);
}

double NumberOption(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    type_error(o.Env(), std::string("Expected finite number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

petcore::Precision PrecisionOption(const Napi::Object& o, const char* key, petcore::Precision fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s != "fp32" && s != "bf16") type_error(o.Env(), std::string("Expected 'fp32' or 'bf16' for ") + key);
  return petcore::parse_precision(s);
}

bool KernelsOption(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return petcore::onednn::compiled();
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s != "onednn" && s != "aten") type_error(o.Env(), std::string("Expected 'onednn' or 'aten' for ") + key);
  if (s == "onednn" && !petcore::onednn::compiled())
    throw Napi::Error::New(o.Env(),
                           "kernels 'onednn': this build does not call oneDNN directly (it needs oneDNN's "
                           "headers, Debian's libdnnl-dev, beside a LibTorch that links that oneDNN)");
  return s == "onednn";
}

at::Tensor IntTensor(const Napi::Value& v, const std::string& what, int64_t rows, int64_t cols) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    type_error(v.Env(), "Expected Int32Array for " + what);
  auto a = v.As<Napi::Int32Array>();
  const int64_t expected = cols > 0 ? rows * cols : rows;
  if (rows >= 0 && static_cast<int64_t>(a.ElementLength()) != expected)
    type_error(v.Env(),
               what + " has " + std::to_string(a.ElementLength()) + " elements, expected " + std::to_string(expected));
  std::vector<int64_t> shape =
      cols > 0 ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{static_cast<int64_t>(a.ElementLength())};
  return at::from_blob(a.Data(), shape, at::kInt).to(at::kLong);  // the conversion copies
}

at::Tensor FloatTensor(const Napi::Value& v, const std::string& what, int64_t rows, int64_t cols) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(v.Env(), "Expected Float32Array for " + what);
  auto a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != rows * cols)
    type_error(v.Env(), what + " has " + std::to_string(a.ElementLength()) + " elements, expected " +
                            std::to_string(rows * cols) + " (" + std::to_string(rows) + " x " + std::to_string(cols) +
                            ")");
  return at::from_blob(a.Data(), {rows, cols}, at::kFloat).clone();
}

at::Tensor OptionalIntTensor(const Napi::Value& v, const std::string& what, int64_t rows, int64_t cols) {
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  return IntTensor(v, what, rows, cols);
}

BatchTensors BatchFromJs(const Napi::Value& v) {
  if (!v.IsObject()) type_error(v.Env(), "Expected batch object { inputIds, batchSize, seqLen }");
  auto o = v.As<Napi::Object>();
  const int64_t B = IntOption(o, "batchSize", -1, 1), T = IntOption(o, "seqLen", -1, 1);
  if (B < 1 || T < 1) type_error(v.Env(), "batch needs positive integers batchSize and seqLen");
  BatchTensors b;
  b.input_ids = IntTensor(o.Get("inputIds"), "inputIds", B, T);
  b.token_type_ids = OptionalIntTensor(o.Get("tokenTypeIds"), "tokenTypeIds", B, T);
  b.attention_mask = OptionalIntTensor(o.Get("attentionMask"), "attentionMask", B, T);
  b.position_ids = OptionalIntTensor(o.Get("positionIds"), "positionIds", B, T);
  b.branch_ids = OptionalIntTensor(o.Get("branchIds"), "branchIds", B, T);
  return b;
}

at::Tensor PositionsFromJs(const Napi::Value& v, const std::string& what) {
  at::Tensor t = IntTensor(v, what, -1, 0);
  if (t.numel() == 0 || t.numel() % 2 != 0) type_error(v.Env(), what + " must hold (row, column) pairs");
  return t.view({-1, 2});
}

at::Tensor CandidatesFromJs(const Napi::Value& v, const Napi::Value& count, int64_t positions,
                            const std::string& what) {
  at::Tensor t = IntTensor(v, what, -1, 0);
  if (!count.IsNumber()) type_error(v.Env(), "Expected integer numCandidates");
  const int64_t c = count.As<Napi::Number>().Int64Value();
  if (c < 1) type_error(v.Env(), "numCandidates must be >= 1");
  if (t.numel() == c) return t;
  if (t.numel() == c * positions) return t.view({positions, c});
  type_error(v.Env(), what + " has " + std::to_string(t.numel()) + " ids: expected numCandidates (" +
                          std::to_string(c) + ") or numCandidates x positions (" + std::to_string(c * positions) + ")");
}

petcore::LossSpec LossFromJs(const Napi::Value& v) {
  if (!v.IsObject()) type_error(v.Env(), "Expected loss object");
  auto o = v.As<Napi::Object>();
  petcore::LossSpec s;
  if (!o.Get("vocabPositions").IsUndefined()) {
    s.vocab_positions = PositionsFromJs(o.Get("vocabPositions"), "vocabPositions");
    s.vocab_targets = IntTensor(o.Get("vocabTargets"), "vocabTargets", s.vocab_positions.size(0), 0);
  }
  if (!o.Get("candPositions").IsUndefined()) {
    s.cand_positions = PositionsFromJs(o.Get("candPositions"), "candPositions");
    s.candidates =
        CandidatesFromJs(o.Get("candidates"), o.Get("numCandidates"), s.cand_positions.size(0), "candidates");
    s.cand_labels = IntTensor(o.Get("candLabels"), "candLabels", s.cand_positions.size(0), 0);
  }
  if (!o.Get("labelPositions").IsUndefined()) {
    s.label_positions = PositionsFromJs(o.Get("labelPositions"), "labelPositions");
    s.label_candidates = IntTensor(o.Get("labelCandidates"), "labelCandidates", -1, 0);
    s.word_label = IntTensor(o.Get("wordLabel"), "wordLabel", -1, 0);
    s.label_targets = IntTensor(o.Get("labelTargets"), "labelTargets", -1, 0);
    const int64_t n = s.label_targets.numel();
    if (n == 0 || s.label_positions.size(0) % n != 0)
      type_error(v.Env(), "labelPositions must hold the same number of slots for each of the labelTargets");
    const int64_t slots = s.label_positions.size(0) / n;
    s.word_matrix =
        FloatTensor(o.Get("wordMatrix"), "wordMatrix", s.word_label.numel(), slots * s.label_candidates.numel());
    const std::string score =
        o.Get("labelScore").IsString() ? o.Get("labelScore").As<Napi::String>().Utf8Value() : "logit";
    const std::string agg =
        o.Get("labelAggregate").IsString() ? o.Get("labelAggregate").As<Napi::String>().Utf8Value() : "mean";
    if (score != "logit" && score != "logprob") type_error(v.Env(), "labelScore must be 'logit' or 'logprob'");
    if (agg != "mean" && agg != "logsumexp") type_error(v.Env(), "labelAggregate must be 'mean' or 'logsumexp'");
    s.label_logprob = score == "logprob";
    s.label_logsumexp = agg == "logsumexp";
  }
  if (!o.Get("clsLabels").IsUndefined()) s.cls_labels = IntTensor(o.Get("clsLabels"), "clsLabels", -1, 0);
  if (!o.Get("clsTeacherLogits").IsUndefined()) {
    const int64_t rows = IntOption(o, "clsRows", -1, 1), labels = IntOption(o, "clsNumLabels", -1, 2);
    if (rows < 1 || labels < 2) type_error(v.Env(), "clsTeacherLogits needs clsRows and clsNumLabels");
    s.cls_teacher_logits = FloatTensor(o.Get("clsTeacherLogits"), "clsTeacherLogits", rows, labels);
  }
  s.cls_temperature = NumberOption(o, "clsTemperature", 1.0);
  s.vocab_weight = NumberOption(o, "vocabWeight", 1.0);
  s.cand_weight = NumberOption(o, "candWeight", 1.0);
  s.label_weight = NumberOption(o, "labelWeight", 1.0);
  s.cls_weight = NumberOption(o, "clsWeight", 1.0);
  return s;
}

petcore::TrainableSpec TrainableFromJs(const Napi::Value& v) {
  if (!v.IsObject()) type_error(v.Env(), "Expected trainable spec { kind: 'all' | 'tensors' | 'rows' }");
  auto o = v.As<Napi::Object>();
  petcore::TrainableSpec s;
  const std::string kind = o.Get("kind").IsString() ? o.Get("kind").As<Napi::String>().Utf8Value() : "";
  if (kind == "all") {
    s.kind = petcore::TrainableSpec::Kind::All;
  } else if (kind == "tensors") {
    s.kind = petcore::TrainableSpec::Kind::Tensors;
    if (!o.Get("names").IsArray()) type_error(v.Env(), "Expected array of tensor names for names");
    auto a = o.Get("names").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (!a.Get(i).IsString()) type_error(v.Env(), "Expected string tensor names");
      s.names.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    }
  } else if (kind == "rows") {
    s.kind = petcore::TrainableSpec::Kind::EmbeddingRows;
    at::Tensor rows = IntTensor(o.Get("rows"), "rows", -1, 0);
    s.rows.assign(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
  } else {
    type_error(v.Env(), "trainable kind must be 'all', 'tensors' or 'rows'");
  }
  if (o.Get("encoder").IsString()) {
    s.prompt_encoder = o.Get("encoder").As<Napi::String>().Utf8Value();
    if (s.prompt_encoder != "lstm" && s.prompt_encoder != "mlp") type_error(v.Env(), "encoder must be 'lstm' or 'mlp'");
    if (s.kind == petcore::TrainableSpec::Kind::All) {
      at::Tensor rows = IntTensor(o.Get("promptRows"), "promptRows", -1, 0);
      s.prompt_rows.assign(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
    } else if (s.kind != petcore::TrainableSpec::Kind::EmbeddingRows) {
      type_error(v.Env(), "a prompt encoder goes with kind 'rows' (frozen) or 'all' (full)");
    }
  }
  s.prompt_lr = NumberOption(o, "promptLr", 0.0);
  return s;
}

petcore::OptimConfig OptimFromJs(const Napi::Value& v) {
  petcore::OptimConfig c;
  if (v.IsUndefined()) return c;
  if (!v.IsObject()) type_error(v.Env(), "Expected optimizer options object");
  auto o = v.As<Napi::Object>();
  c.lr = NumberOption(o, "lr", c.lr);
  c.weight_decay = NumberOption(o, "weightDecay", c.weight_decay);
  c.beta1 = NumberOption(o, "beta1", c.beta1);
  c.beta2 = NumberOption(o, "beta2", c.beta2);
  c.eps = NumberOption(o, "eps", c.eps);
  c.warmup_steps = IntOption(o, "warmupSteps", 0, 0);
  c.total_steps = IntOption(o, "totalSteps", 0, 0);
  c.max_grad_norm = NumberOption(o, "maxGradNorm", c.max_grad_norm);
  c.seed = static_cast<uint64_t>(IntOption(o, "seed", static_cast<int64_t>(c.seed), 0));
  c.bf16 = (o.Get("bf16").IsBoolean() && o.Get("bf16").As<Napi::Boolean>().Value()) ||
           PrecisionOption(o, "precision", petcore::Precision::Fp32) == petcore::Precision::Bf16;
  c.initial_step = IntOption(o, "initialStep", 0, 0);
  c.recompute = o.Get("recompute").IsBoolean() && o.Get("recompute").As<Napi::Boolean>().Value();
  const Napi::Value fused = o.Get("fusedAdamw");
  if (!fused.IsUndefined() && !fused.IsBoolean()) type_error(v.Env(), "Expected boolean for fusedAdamw");
  c.fused_adamw = fused.IsUndefined() || fused.As<Napi::Boolean>().Value();
  return c;
}

Napi::Float32Array ToFloat32Array(Napi::Env env, const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(c.numel()));
  if (c.numel() > 0) std::memcpy(out.Data(), c.data_ptr<float>(), sizeof(float) * static_cast<size_t>(c.numel()));
  return out;
}

Napi::Array ToStringArray(Napi::Env env, const std::vector<std::string>& v) {
  auto a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, v[i]));
  return a;
}

}  // namespace petaddon
