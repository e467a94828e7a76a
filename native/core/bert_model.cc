#include "bert_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include "checkpoint.h"
#include "cpu_inference.h"
#include "cpu_threads.h"
#include "file_util.h"
#include "recompute.h"

namespace petcore {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// HF's own renames: legacy TF LayerNorm names, and checkpoints of a bare BertModel without the "bert." prefix.
std::string canonical_name(std::string name) {
  if (ends_with(name, "LayerNorm.gamma")) name = name.substr(0, name.size() - 5) + "weight";
  else if (ends_with(name, "LayerNorm.beta")) name = name.substr(0, name.size() - 4) + "bias";
  if (starts_with(name, "embeddings.") || starts_with(name, "encoder.") || starts_with(name, "pooler."))
    name = "bert." + name;
  return name;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const BertConfig& c) {
  const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> e = {
      {"bert.embeddings.word_embeddings.weight", {V, H}},
      {"bert.embeddings.position_embeddings.weight", {c.max_position_embeddings, H}},
      {"bert.embeddings.token_type_embeddings.weight", {c.type_vocab_size, H}},
      {"bert.embeddings.LayerNorm.weight", {H}},
      {"bert.embeddings.LayerNorm.bias", {H}},
  };
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "bert.encoder.layer." + std::to_string(i) + ".";
    for (const char* m : {"query", "key", "value"}) {
      e.push_back({p + "attention.self." + m + ".weight", {H, H}});
      e.push_back({p + "attention.self." + m + ".bias", {H}});
    }
    e.push_back({p + "attention.output.dense.weight", {H, H}});
    e.push_back({p + "attention.output.dense.bias", {H}});
    e.push_back({p + "attention.output.LayerNorm.weight", {H}});
    e.push_back({p + "attention.output.LayerNorm.bias", {H}});
    e.push_back({p + "intermediate.dense.weight", {I, H}});
    e.push_back({p + "intermediate.dense.bias", {I}});
    e.push_back({p + "output.dense.weight", {H, I}});
    e.push_back({p + "output.dense.bias", {H}});
    e.push_back({p + "output.LayerNorm.weight", {H}});
    e.push_back({p + "output.LayerNorm.bias", {H}});
  }
  e.push_back({"cls.predictions.transform.dense.weight", {H, H}});
  e.push_back({"cls.predictions.transform.dense.bias", {H}});
  e.push_back({"cls.predictions.transform.LayerNorm.weight", {H}});
  e.push_back({"cls.predictions.transform.LayerNorm.bias", {H}});
  e.push_back({"cls.predictions.bias", {V}});
  if (!c.tie_word_embeddings) e.push_back({"cls.predictions.decoder.weight", {V, H}});
  return e;
}

std::unique_ptr<BertModel> BertModel::load(const std::string& dir, const at::Device& device) {
  std::unique_ptr<BertModel> m(new BertModel());
  m->device_ = device;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // cuDNN's fused attention builds an execution plan per new shape (~50 ms each, measured on an H100 with bf16
  // autocast): length-bucketed scoring sees a new sequence length nearly every batch. Flash / memory-efficient
  // kernels need no plan. A process-wide switch; the addon is this process's only LibTorch user.
  if (device.is_cuda()) at::globalContext().setSDPUseCuDNN(false);
#endif
  m->source_dir_ = dir;
  m->config_ = load_config(join_path(dir, "config.json"));
  CheckpointFiles files;
  NamedTensors raw = read_checkpoint(dir, &files);
  m->report_.format = files.format;
  m->report_.files = files.files;

  const auto expected = expected_tensors(m->config_);
  std::map<std::string, std::vector<int64_t>> shapes(expected.begin(), expected.end());
  std::map<std::string, at::Tensor> found;
  at::Tensor decoder_bias;
  for (auto& [raw_name, t] : raw) {
    const std::string name = canonical_name(raw_name);
    if (shapes.count(name)) {
      if (found.count(name)) throw std::runtime_error(dir + ": tensor \"" + name + "\" appears twice in the checkpoint");
      found[name] = t;
    } else if (name == "cls.predictions.decoder.weight" && m->config_.tie_word_embeddings) {
      m->report_.ignored.push_back(raw_name);  // tied: the word embeddings are the decoder
    } else if (name == "cls.predictions.decoder.bias") {
      decoder_bias = t;
      m->report_.ignored.push_back(raw_name);
    } else {
      m->report_.unexpected.push_back(raw_name);
      m->extras_.emplace_back(raw_name, t);
    }
  }
  if (!found.count("cls.predictions.bias") && decoder_bias.defined()) {
    found["cls.predictions.bias"] = decoder_bias;
    m->report_.ignored.pop_back();
  }
  std::vector<std::string> missing;
  for (const auto& [name, shape] : expected) {
    auto it = found.find(name);
    if (it == found.end()) {
      missing.push_back(name);
      continue;
    }
    if (it->second.sizes().vec() != shape)
      throw std::runtime_error(dir + ": tensor \"" + name + "\" has shape " + shape_str(it->second.sizes()) +
                               ", expected " + shape_str(shape) + " from config.json");
    if (!it->second.is_floating_point())
      throw std::runtime_error(dir + ": tensor \"" + name + "\" is not floating point");
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + missing[i];
    throw std::runtime_error(dir + ": " + std::to_string(missing.size()) + " tensor(s) missing from the checkpoint: " + list);
  }
  for (auto& [name, t] : found) m->params_[name] = t.to(device, at::kFloat).contiguous();
  for (int64_t i = 0; i < m->config_.num_hidden_layers; ++i) m->layers_.push_back(resolve_layer(m->params_, i));
  return m;
}

const at::Tensor& BertModel::param(const std::string& name) const {
  auto it = params_.find(name);
  if (it == params_.end()) throw std::runtime_error("no tensor named \"" + name + "\"");
  return it->second;
}

Batch BertModel::check_batch(const at::Tensor& input_ids, const at::Tensor& token_type_ids,
                             const at::Tensor& attention_mask) const {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(0) == 0 || input_ids.size(1) == 0)
    throw std::runtime_error("input_ids must be a non-empty [batch, seq] tensor");
  const auto sizes = input_ids.sizes();
  if (sizes[1] > config_.max_position_embeddings)
    throw std::runtime_error("sequence length " + std::to_string(sizes[1]) + " exceeds max_position_embeddings " +
                             std::to_string(config_.max_position_embeddings));
  Batch b;
  b.input_ids = input_ids.to(device_, at::kLong);
  const int64_t lo = b.input_ids.min().item<int64_t>(), hi = b.input_ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.vocab_size)
    throw std::runtime_error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary (size " +
                             std::to_string(config_.vocab_size) + ")");
  if (token_type_ids.defined()) {
    if (token_type_ids.sizes() != sizes) throw std::runtime_error("token_type_ids must have the shape of input_ids");
    b.token_type_ids = token_type_ids.to(device_, at::kLong);
    const int64_t tlo = b.token_type_ids.min().item<int64_t>(), thi = b.token_type_ids.max().item<int64_t>();
    if (tlo < 0 || thi >= config_.type_vocab_size)
      throw std::runtime_error("token type id " + std::to_string(tlo < 0 ? tlo : thi) + " is outside [0, " +
                               std::to_string(config_.type_vocab_size) + ")");
  } else {
    b.token_type_ids = at::zeros_like(b.input_ids);
  }
  if (attention_mask.defined()) {
    if (attention_mask.sizes() != sizes) throw std::runtime_error("attention_mask must have the shape of input_ids");
    b.attention_mask = attention_mask.to(device_, at::kLong);
  } else {
    b.attention_mask = at::ones_like(b.input_ids);
  }
  return b;
}

at::Tensor BertModel::embed(const Batch& b, bool train, const RowOverride* rows) const {
  RowOverride own{input_rows_, input_values_, false};
  if (!rows && input_rows_.defined()) rows = &own;
  const int64_t T = b.input_ids.size(1);
  at::Tensor positions = at::arange(T, b.input_ids.options()).unsqueeze(0);
  at::Tensor words = at::embedding(word_embeddings(), b.input_ids);
  if (rows && rows->rows.defined()) {
    // Tokens of the replaced rows take their embedding from `values`; no copy of the [V, H] matrix is made, and
    // the gradient reaches only `values`.
    at::Tensor slot = at::full({config_.vocab_size}, -1, b.input_ids.options());
    slot.index_copy_(0, rows->rows, at::arange(rows->rows.size(0), b.input_ids.options()));
    at::Tensor k = slot.index_select(0, b.input_ids.reshape(-1)).view_as(b.input_ids);
    at::Tensor hit = k.ge(0);
    words = words.index_put({hit}, rows->values.to(words.scalar_type()).index_select(0, k.masked_select(hit)));
  }
  // Same order of additions as HF: (words + token types) + positions.
  const at::Tensor types = at::embedding(param("bert.embeddings.token_type_embeddings.weight"), b.token_type_ids);
  const at::Tensor pos = at::embedding(param("bert.embeddings.position_embeddings.weight"), positions);
  const at::Tensor& ln_w = param("bert.embeddings.LayerNorm.weight");
  const at::Tensor& ln_b = param("bert.embeddings.LayerNorm.bias");
  if (!at::GradMode::is_enabled() && !train) {
    // Inference: in place on the fresh lookup (no tensor per step), LayerNorm through oneDNN where it can.
    return layer::layer_norm_(words.add_(types).add_(pos), ln_w, ln_b, config_.layer_norm_eps,
                              onednn_kernels_ && device_.is_cpu());
  }
  at::Tensor x = words + types;
  x = x + pos;
  x = at::layer_norm(x, {config_.hidden_size}, ln_w, ln_b, config_.layer_norm_eps);
  return apply_dropout(x, config_.hidden_dropout_prob, train);
}

LayerOperands BertModel::operands(int64_t i, Precision precision) const {
  const LayerWeights& w = layers_.at(static_cast<size_t>(i));
  const at::Tensor* gemm[] = {&w.query_w, &w.query_b, &w.key_w,   &w.key_b,   &w.value_w, &w.value_b,
                              &w.attn_out_w, &w.attn_out_b, &w.inter_w, &w.inter_b, &w.out_w,   &w.out_b};
  bool differentiable = false;
  if (at::GradMode::is_enabled())
    for (const at::Tensor* t : gemm) differentiable = differentiable || t->requires_grad();
  // Under autograd ATen's dense steps (attention through oneDNN where it can: onednn_attention.h).
  LayerOperands o =
      differentiable ? make_operands(w, config_, precision, fused_attention(device_)) : cached_operands(i, precision);
  o.onednn = onednn_kernels_ && device_.is_cpu();
  return o;
}

LayerOperands BertModel::cached_operands(int64_t i, Precision precision) const {
  const bool fused = fused_attention(device_);
  // Cached for all layers at once; rebuilt when any source weight was replaced or written in place.
  std::lock_guard<std::mutex> lock(cache_mu_);
  OperandCache& cache = operand_cache_[static_cast<int>(precision)];
  std::vector<std::pair<const void*, int64_t>> stamps;
  for (const LayerWeights& l : layers_)
    for (const at::Tensor* t : {&l.query_w, &l.query_b, &l.key_w, &l.key_b, &l.value_w, &l.value_b, &l.attn_out_w,
                                &l.attn_out_b, &l.inter_w, &l.inter_b, &l.out_w, &l.out_b})
      stamps.emplace_back(t->unsafeGetTensorImpl(), static_cast<int64_t>(t->_version()));
  if (cache.stamps != stamps) {
    c10::InferenceMode normal_tensors(false);  // usable later in graphs that record autograd
    at::NoGradGuard no_grad;
    cache.layers.clear();
    for (const LayerWeights& l : layers_) cache.layers.push_back(make_operands(l, config_, precision, fused));
    cache.stamps = std::move(stamps);
  }
  return cache.layers.at(static_cast<size_t>(i));
}

at::Tensor BertModel::layer_forward(int64_t i, const at::Tensor& x, const at::Tensor& mask_bias, bool train,
                                    Precision precision, const at::Tensor& rows) const {
  return layer::forward(config_, operands(i, precision), x, mask_bias, train, rows);
}

at::Tensor BertModel::encode(const Batch& b, bool train, const RowOverride* rows, bool recompute,
                             Precision precision) const {
  // Inference (eval, no autograd) on CPU: the layer kernel scheduled in tasks.
  if (const int threads = inference_tasks(*this, train)) return encode_in_tasks(*this, b, rows, threads, {}, precision);
  at::Tensor x = embed(b, train, rows);
  const at::Tensor mask_bias = attention_mask_bias(b.attention_mask);
  const bool dropout = train && (config_.hidden_dropout_prob > 0 || config_.attention_probs_dropout_prob > 0);
  recompute = recompute && at::GradMode::is_enabled() && !(dropout && device_.is_cuda());
  // Training on CPU: the row-wise steps (projections, feed-forward, LayerNorms: most of the work) for the real
  // tokens alone, not for padding (a shuffled batch pads some 40 %); the padded rows' hidden states come out zero
  // (no loss reads them). Inference keeps every row, as HF computes them.
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2);
  // bf16 rounds the row count up to a multiple of 256: oneDNN makes a primitive (~1 ms) per new GEMM shape.
  const at::Tensor packed = row_packing_ && at::GradMode::is_enabled() && device_.is_cpu()
                                ? packed_rows(b.attention_mask, precision == Precision::Bf16 ? 256 : 1)
                                : at::Tensor();
  if (packed.defined()) x = x.reshape({B * T, H}).index_select(0, packed);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i)
    x = recompute ? recomputed_layer(*this, i, x, mask_bias, train, precision, packed)
                  : layer_forward(i, x, mask_bias, train, precision, packed);
  if (packed.defined()) x = at::zeros({B * T, H}, x.options()).index_copy_(0, packed, x).view({B, T, H});
  return x;
}

at::Tensor BertModel::mlm_logits(const at::Tensor& hidden_rows, const RowOverride* rows, Precision precision) const {
  // On the task path the head's transform runs single-threaded in its caller: a multi-threaded OpenBLAS call or
  // OpenMP region would leave its workers spinning on the cores for a while, against the pool.
  const int threads = inference_tasks(*this, false);
  SerialBlasGuard serial_blas(threads > 1);
  std::unique_ptr<SerialOpsGuard> serial_ops(threads > 1 ? new SerialOpsGuard() : nullptr);
  at::Tensor h = at::linear(hidden_rows, param("cls.predictions.transform.dense.weight"),
                            param("cls.predictions.transform.dense.bias"));
  h = activation(h, config_.hidden_act);
  h = at::layer_norm(h, {config_.hidden_size}, param("cls.predictions.transform.LayerNorm.weight"),
                     param("cls.predictions.transform.LayerNorm.bias"), config_.layer_norm_eps);
  const at::Tensor& bias = param("cls.predictions.bias");
  const at::Tensor& decoder = config_.tie_word_embeddings ? word_embeddings() : param("cls.predictions.decoder.weight");
  at::Tensor logits;
  if (kernel_precision(precision, device_) == Precision::Bf16)
    logits = at::linear(h.to(at::kBFloat16), decoder.to(at::kBFloat16), bias.to(at::kBFloat16));
  else if (threads && h.dim() == 2 && h.size(0) > 0 && h.scalar_type() == at::kFloat && decoder.scalar_type() == at::kFloat)
    logits = decode_in_tasks(h.contiguous(), decoder, bias, threads, onednn_kernels_);
  else
    logits = at::linear(h, decoder, bias);
  if (!config_.tie_word_embeddings) return logits;
  if (rows && rows->output && rows->rows.defined()) {
    // Tied decoder: the replaced rows' logits come from `values` (only [M, R] is recomputed).
    at::Tensor own = at::linear(h, rows->values.to(h.scalar_type()), bias.index_select(0, rows->rows));
    logits = logits.scatter(1, rows->rows.unsqueeze(0).expand({logits.size(0), rows->rows.size(0)}), own.to(logits.scalar_type()));
  }
  return logits;
}

void BertModel::set_input_rows(const at::Tensor& rows, const at::Tensor& values) {
  if (!rows.defined()) {
    input_rows_ = input_values_ = at::Tensor();
    return;
  }
  if (rows.dim() != 1 || values.dim() != 2 || values.size(0) != rows.size(0) || values.size(1) != config_.hidden_size)
    throw std::runtime_error("prompt embeddings must be [rows, hidden_size]");
  input_rows_ = rows.to(device_, at::kLong);
  input_values_ = values.to(device_, at::kFloat);
}

void BertModel::set_embedding_rows(const at::Tensor& rows, const at::Tensor& values) {
  if (rows.dim() != 1 || values.dim() != 2 || values.size(0) != rows.size(0) || values.size(1) != config_.hidden_size)
    throw std::runtime_error("embedding rows must be [rows, hidden_size]");
  const at::Tensor r = rows.to(device_, at::kLong);
  if (r.numel() > 0 && (r.min().item<int64_t>() < 0 || r.max().item<int64_t>() >= config_.vocab_size))
    throw std::runtime_error("embedding row outside the vocabulary");
  at::NoGradGuard guard;
  params_["bert.embeddings.word_embeddings.weight"].index_copy_(0, r, values.to(device_, at::kFloat));
}

bool BertModel::add_param(const std::string& name, const at::Tensor& init) {
  for (auto it = extras_.begin(); it != extras_.end(); ++it) {
    if (it->first == name && it->second.sizes() == init.sizes()) {
      params_[name] = it->second.to(device_, at::kFloat).contiguous();
      extras_.erase(it);
      auto& u = report_.unexpected;
      u.erase(std::remove(u.begin(), u.end(), name), u.end());
      return true;
    }
  }
  params_[name] = init.to(device_, at::kFloat).contiguous();
  return false;
}

void BertModel::save(const std::string& dir, uint64_t max_shard_bytes) const {
  make_directories(dir);
  NamedTensors out;
  std::set<std::string> mlm;
  for (const auto& [name, t] : expected_tensors(config_)) {
    out.emplace_back(name, param(name));
    mlm.insert(name);
  }
  for (const auto& [name, t] : params_)
    if (!mlm.count(name)) out.emplace_back(name, t);  // added heads
  for (const auto& nt : extras_) out.push_back(nt);
  write_checkpoint(dir, out, max_shard_bytes);
  const std::string cfg = config_.raw.dump(2) + "\n";
  write_file_atomically(join_path(dir, "config.json"),
                        [&](std::ofstream& o) { o.write(cfg.data(), static_cast<std::streamsize>(cfg.size())); });
  if (source_dir_ != dir) {
    for (const char* f : {"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      const std::string src = join_path(source_dir_, f);
      if (!file_exists(src)) continue;
      const std::string text = read_text_file(src);
      write_file_atomically(join_path(dir, f),
                            [&](std::ofstream& o) { o.write(text.data(), static_cast<std::streamsize>(text.size())); });
    }
  }
}

}  // namespace petcore
