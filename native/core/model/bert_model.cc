#include "model/bert_model.h"

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

#include "io/checkpoint.h"
#include "io/file_util.h"
#include "kernels/cpu_inference.h"
#include "kernels/cpu_threads.h"
#include "train/recompute.h"

namespace petcore {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

}  // namespace

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

  const BertConfig& c = m->config_;
  const std::vector<TensorSpec> expected = expected_tensors(c);
  std::map<std::string, const TensorSpec*> specs;
  for (const TensorSpec& e : expected) specs[e.name] = &e;
  const std::string& decoder_bias_name = m->names().decoder_bias;
  std::map<std::string, at::Tensor> found;
  at::Tensor decoder_bias;
  for (auto& [raw_name, t] : raw) {
    const std::string name = canonical_name(c, raw_name);
    if (specs.count(name)) {
      if (found.count(name))
        throw std::runtime_error(dir + ": tensor \"" + name + "\" appears twice in the checkpoint");
      found[name] = t;
    } else if (ignored_tensor(c, name)) {
      m->report_.ignored.push_back(raw_name);
    } else if (!decoder_bias_name.empty() && name == decoder_bias_name) {
      decoder_bias = t;  // HF's duplicate of cls.predictions.bias
      m->report_.ignored.push_back(raw_name);
    } else {
      m->report_.unexpected.push_back(raw_name);
      m->extras_.emplace_back(raw_name, t);
    }
  }
  const std::string& head_bias = m->names().head_bias;
  if (!head_bias.empty() && !found.count(head_bias) && decoder_bias.defined()) {
    found[head_bias] = decoder_bias;
    m->report_.ignored.pop_back();
  }
  std::vector<std::string> missing;
  for (const TensorSpec& e : expected) {
    auto it = found.find(e.name);
    if (it == found.end()) {
      missing.push_back(e.name);
      continue;
    }
    // HF's Conv1D stores [in, out]: the file's shape is the transpose of ours.
    const std::vector<int64_t> stored = e.input_major ? std::vector<int64_t>{e.shape[1], e.shape[0]} : e.shape;
    if (it->second.sizes().vec() != stored)
      throw std::runtime_error(dir + ": tensor \"" + e.name + "\" has shape " + shape_str(it->second.sizes()) +
                               ", expected " + shape_str(stored) + " from config.json");
    if (!it->second.is_floating_point())
      throw std::runtime_error(dir + ": tensor \"" + e.name + "\" is not floating point");
    if (e.input_major) it->second = it->second.t();
  }
  if (!missing.empty()) {
    // the first few names say which part is absent (a whole layer is 16 of them)
    constexpr size_t kListed = 8;
    std::string list;
    for (size_t i = 0; i < missing.size() && i < kListed; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > kListed) list += " and " + std::to_string(missing.size() - kListed) + " more";
    throw std::runtime_error(dir + ": " + std::to_string(missing.size()) +
                             " tensor(s) missing from the checkpoint of a " + family_name(c.family) +
                             " model: " + list);
  }
  for (auto& [name, t] : found) m->params_[name] = t.to(device, at::kFloat).contiguous();
  if (m->names().head_bias.empty()) m->zero_bias_ = at::zeros({c.vocab_size}, at::TensorOptions().device(device));
  for (int64_t i = 0; i < m->config_.layer_passes(); ++i) m->layers_.push_back(resolve_layer(m->params_, c, i));
  return m;
}

const at::Tensor& BertModel::param(const std::string& name) const {
  auto it = params_.find(name);
  if (it == params_.end()) throw std::runtime_error("no tensor named \"" + name + "\"");
  return it->second;
}

Batch BertModel::check_batch(const at::Tensor& input_ids, const at::Tensor& token_type_ids,
                             const at::Tensor& attention_mask, const at::Tensor& position_ids,
                             const at::Tensor& branch_ids) const {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(0) == 0 || input_ids.size(1) == 0)
    throw std::runtime_error("input_ids must be a non-empty [batch, seq] tensor");
  const auto sizes = input_ids.sizes();
  if (!position_ids.defined() && sizes[1] > config_.max_sequence_length())
    throw std::runtime_error(
        "sequence length " + std::to_string(sizes[1]) + " exceeds the model's " +
        std::to_string(config_.max_sequence_length()) + " positions (max_position_embeddings " +
        std::to_string(config_.max_position_embeddings) +
        (config_.position_offset ? " less the offset " + std::to_string(config_.position_offset) : std::string()) +
        ")");
  // An optional [B, T] tensor of the batch's shape, int64 on the device, its values in [0, upper).
  auto ids = [&](const at::Tensor& t, const char* what, int64_t upper, const std::string& range) {
    if (t.sizes() != sizes) throw std::runtime_error(std::string(what) + " must have the shape of input_ids");
    at::Tensor out = t.to(device_, at::kLong);
    const int64_t lo = out.min().item<int64_t>(), hi = out.max().item<int64_t>();
    if (lo < 0 || hi >= upper)
      throw std::runtime_error(std::string(what) + " " + std::to_string(lo < 0 ? lo : hi) + " is outside " + range);
    return out;
  };
  Batch b;
  b.input_ids = input_ids.to(device_, at::kLong);
  const int64_t lo = b.input_ids.min().item<int64_t>(), hi = b.input_ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.vocab_size)
    throw std::runtime_error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary (size " +
                             std::to_string(config_.vocab_size) + ")");
  if (token_type_ids.defined()) {
    // A family without token types (GPT-2) takes all-zero ones, as patterns make them.
    const int64_t types = std::max<int64_t>(config_.type_vocab_size, 1);
    b.token_type_ids = ids(token_type_ids, "token type id", types,
                           config_.type_vocab_size
                               ? "[0, " + std::to_string(types) + ")"
                               : "{0} (a " + std::string(family_name(config_.family)) + " model has no token types)");
  } else {
    b.token_type_ids = at::zeros_like(b.input_ids);
  }
  if (attention_mask.defined()) {
    if (attention_mask.sizes() != sizes) throw std::runtime_error("attention_mask must have the shape of input_ids");
    b.attention_mask = attention_mask.to(device_, at::kLong);
  } else {
    b.attention_mask = at::ones_like(b.input_ids);
  }
  if (position_ids.defined())
    b.position_ids =
        ids(position_ids, "position id", config_.max_position_embeddings,
            "the position table (max_position_embeddings " + std::to_string(config_.max_position_embeddings) + ")");
  if (branch_ids.defined()) b.branch_ids = ids(branch_ids, "branch id", std::numeric_limits<int64_t>::max(), ">= 0");
  return b;
}

at::Tensor BertModel::attention_bias(const Batch& b) const {
  return petcore::attention_bias(config_, b.attention_mask, b.branch_ids);
}

at::Tensor BertModel::embed(const Batch& b, bool train, const RowOverride* rows) const {
  RowOverride own{input_rows_, input_values_, false};
  if (!rows && input_rows_.defined()) rows = &own;
  const int64_t T = b.input_ids.size(1);
  at::Tensor positions;
  if (config_.position_offset == 0) {
    positions = b.position_ids.defined() ? b.position_ids : at::arange(T, b.input_ids.options()).unsqueeze(0);
  } else if (b.position_ids.defined()) {
    positions = b.position_ids + config_.position_offset;
  } else {
    // RoBERTa (fairseq): real tokens count from pad_token_id + 1, padding tokens sit at pad_token_id.
    const at::Tensor real = b.input_ids.ne(config_.pad_token_id).to(at::kLong);
    positions = real.cumsum(1) * real + config_.pad_token_id;
  }
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
  const ModelNames& n = names();
  const at::Tensor pos = at::embedding(param(n.position), positions);
  const bool inference = !at::GradMode::is_enabled() && !train;
  if (n.token_type.empty()) {
    // GPT-2: words + positions, no LayerNorm.
    at::Tensor x = inference ? words.add_(pos) : words + pos;
    return apply_dropout(x, config_.embedding_dropout_prob, train);
  }
  // Same order of additions as HF: (words + token types) + positions.
  const at::Tensor types = at::embedding(param(n.token_type), b.token_type_ids);
  // ERNIE: every token takes task type 0, as HF does without task_type_ids.
  const at::Tensor task =
      n.task_type.empty() || config_.task_type_vocab_size == 0 ? at::Tensor() : param(n.task_type)[0];
  const at::Tensor& ln_w = param(n.embed_ln_w);
  const at::Tensor& ln_b = param(n.embed_ln_b);
  // ALBERT: the embeddings are projected to the layers' width after their LayerNorm and dropout.
  auto project = [&](const at::Tensor& e) {
    return n.embed_proj_w.empty() ? e : at::linear(e, param(n.embed_proj_w), param(n.embed_proj_b));
  };
  if (inference) {
    // Inference: in place on the fresh lookup (no tensor per step), LayerNorm through oneDNN where it can.
    words.add_(types).add_(pos);
    if (task.defined()) words.add_(task);
    return project(layer::layer_norm_(words, ln_w, ln_b, config_.layer_norm_eps, onednn_kernels_ && device_.is_cpu()));
  }
  at::Tensor x = words + types;
  x = x + pos;
  if (task.defined()) x = x + task;
  x = at::layer_norm(x, {config_.embedding_size}, ln_w, ln_b, config_.layer_norm_eps);
  return project(apply_dropout(x, config_.embedding_dropout_prob, train));
}

at::Tensor BertModel::final_norm(const at::Tensor& x) const {
  const ModelNames& n = names();
  if (n.final_ln_w.empty()) return x;
  return layer::layer_norm(x, param(n.final_ln_w), param(n.final_ln_b), config_.layer_norm_eps,
                           onednn_kernels_ && device_.is_cpu());
}

LayerOperands BertModel::operands(int64_t i, Precision precision) const {
  const LayerWeights& w = layers_.at(static_cast<size_t>(i));
  const at::Tensor* gemm[] = {&w.query_w,    &w.query_b,    &w.key_w,   &w.key_b,   &w.value_w, &w.value_b,
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
  const at::Tensor mask_bias = attention_bias(b);
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
  for (int64_t i = 0; i < config_.layer_passes(); ++i)
    x = recompute ? recomputed_layer(*this, i, x, mask_bias, train, precision, packed)
                  : layer_forward(i, x, mask_bias, train, precision, packed);
  x = final_norm(x);
  if (packed.defined()) x = at::zeros({B * T, H}, x.options()).index_copy_(0, packed, x).view({B, T, H});
  return x;
}

at::Tensor BertModel::mlm_logits(const at::Tensor& hidden_rows, const RowOverride* rows, Precision precision) const {
  // On the task path the head's transform runs single-threaded in its caller: a multi-threaded OpenBLAS call or
  // OpenMP region would leave its workers spinning on the cores for a while, against the pool.
  const int threads = inference_tasks(*this, false);
  SerialBlasGuard serial_blas(threads > 1);
  std::unique_ptr<SerialOpsGuard> serial_ops(threads > 1 ? new SerialOpsGuard() : nullptr);
  const at::Tensor h = head_transform(hidden_rows);
  const auto [decoder, bias] = decoder_operands(Precision::Fp32);  // the weights themselves (autograd sees them)
  at::Tensor logits;
  if (kernel_precision(precision, device_) == Precision::Bf16)
    logits = at::linear(h.to(at::kBFloat16), decoder.to(at::kBFloat16), bias.to(at::kBFloat16));
  else if (threads && h.dim() == 2 && h.size(0) > 0 && h.scalar_type() == at::kFloat &&
           decoder.scalar_type() == at::kFloat)
    logits = decode_in_tasks(h.contiguous(), decoder, bias, threads, onednn_kernels_);
  else logits = at::linear(h, decoder, bias);
  if (!config_.tie_word_embeddings) return logits;
  if (rows && rows->output && rows->rows.defined()) {
    // Tied decoder: the replaced rows' logits come from `values` (only [M, R] is recomputed).
    at::Tensor own = at::linear(h, rows->values.to(h.scalar_type()), bias.index_select(0, rows->rows));
    logits = logits.scatter(1, rows->rows.unsqueeze(0).expand({logits.size(0), rows->rows.size(0)}),
                            own.to(logits.scalar_type()));
  }
  return logits;
}

at::Tensor BertModel::head_transform(const at::Tensor& hidden_rows) const {
  const ModelNames& n = names();
  if (n.head_dense_w.empty()) return hidden_rows;
  at::Tensor h = at::linear(hidden_rows, param(n.head_dense_w), param(n.head_dense_b));
  h = activation(h, config_.hidden_act);
  return at::layer_norm(h, {config_.embedding_size}, param(n.head_ln_w), param(n.head_ln_b), config_.layer_norm_eps);
}

std::pair<at::Tensor, at::Tensor> BertModel::decoder_operands(Precision precision) const {
  const ModelNames& n = names();
  const at::Tensor& bias = n.head_bias.empty() ? zero_bias_ : param(n.head_bias);
  const at::Tensor& decoder = config_.tie_word_embeddings ? word_embeddings() : param(n.decoder);
  if (precision != Precision::Bf16) return {decoder, bias};
  const std::vector<std::pair<const void*, int64_t>> stamps = {
      {decoder.unsafeGetTensorImpl(), static_cast<int64_t>(decoder._version())},
      {bias.unsafeGetTensorImpl(), static_cast<int64_t>(bias._version())}};
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (bf16_decoder_.stamps != stamps) {
    c10::InferenceMode normal_tensors(false);
    at::NoGradGuard no_grad;
    bf16_decoder_.decoder = decoder.detach().to(at::kBFloat16).contiguous();
    bf16_decoder_.bias = bias.detach().to(at::kBFloat16).contiguous();
    bf16_decoder_.stamps = stamps;
  }
  return {bf16_decoder_.decoder, bf16_decoder_.bias};
}

void BertModel::set_input_rows(const at::Tensor& rows, const at::Tensor& values) {
  if (!rows.defined()) {
    input_rows_ = input_values_ = at::Tensor();
    return;
  }
  if (rows.dim() != 1 || values.dim() != 2 || values.size(0) != rows.size(0) ||
      values.size(1) != config_.embedding_size)
    throw std::runtime_error("prompt embeddings must be [rows, embedding_size " +
                             std::to_string(config_.embedding_size) + "]");
  input_rows_ = rows.to(device_, at::kLong);
  input_values_ = values.to(device_, at::kFloat);
}

void BertModel::set_embedding_rows(const at::Tensor& rows, const at::Tensor& values) {
  if (rows.dim() != 1 || values.dim() != 2 || values.size(0) != rows.size(0) ||
      values.size(1) != config_.embedding_size)
    throw std::runtime_error("embedding rows must be [rows, embedding_size " + std::to_string(config_.embedding_size) +
                             "]");
  const at::Tensor r = rows.to(device_, at::kLong);
  if (r.numel() > 0 && (r.min().item<int64_t>() < 0 || r.max().item<int64_t>() >= config_.vocab_size))
    throw std::runtime_error("embedding row outside the vocabulary");
  at::NoGradGuard guard;
  params_[names().word].index_copy_(0, r, values.to(device_, at::kFloat));
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
  for (const TensorSpec& e : expected_tensors(config_)) {
    // HF's Conv1D layout back for the projections that are input-major in the files.
    out.emplace_back(e.name, e.input_major ? param(e.name).t().contiguous() : param(e.name));
    mlm.insert(e.name);
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
