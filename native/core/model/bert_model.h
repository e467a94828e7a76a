// A language model held as named tensors with Hugging Face names, and its forward pass: a BERT masked LM or a
// GPT-2 causal LM (config.h's families; model_family.h names their tensors), on the one encoder layer.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "io/safetensors.h"
#include "kernels/onednn_primitives.h"
#include "model/config.h"
#include "model/encoder_layer.h"
#include "model/model_family.h"

namespace petcore {

// Replacement embeddings for some rows of the word-embedding matrix, applied without copying the matrix:
// on the input side (the rows' tokens embed as `values`) and, when `output` (tied decoder), in the MLM head too.
struct RowOverride {
  at::Tensor rows;    // [R] int64
  at::Tensor values;  // [R, H]
  bool output = true;
};

// One padded batch, int64 on the model's device, each [batch, seq].
struct Batch {
  at::Tensor input_ids;
  at::Tensor token_type_ids;
  at::Tensor attention_mask;
  at::Tensor position_ids;  // optional: 0, 1, 2, ... where undefined
  at::Tensor branch_ids;    // optional: attention branches (attention_bias()); undefined: none
};

struct LoadReport {
  std::string format;
  std::vector<std::string> files;
  std::vector<std::string> unexpected;  // tensors in the checkpoint that the MLM does not use (kept for saving)
  std::vector<std::string> ignored;     // tensors dropped on purpose (a tied decoder, a duplicate decoder bias)
};

class BertModel {
 public:
  // Loads config.json and the weights of an HF model directory onto `device`. Throws std::runtime_error naming
  // missing tensors, tensors of the wrong shape, or problems with the files.
  static std::unique_ptr<BertModel> load(const std::string& dir, const at::Device& device);

  const BertConfig& config() const { return config_; }
  const LoadReport& report() const { return report_; }
  const at::Device& device() const { return device_; }
  const std::string& source_dir() const { return source_dir_; }

  // Trainable tensors, HF names, fp32 on device. The tied decoder is the word-embedding matrix itself.
  std::map<std::string, at::Tensor>& params() { return params_; }
  const at::Tensor& param(const std::string& name) const;
  const ModelNames& names() const { return model_names(config_.family); }
  const at::Tensor& word_embeddings() const { return param(names().word); }

  // Throws a clear error for ids outside the vocabulary, a sequence longer than the position table, or
  // mismatched shapes; moves the tensors to the model's device as int64.
  // position_ids and branch_ids are optional (undefined).
  Batch check_batch(const at::Tensor& input_ids, const at::Tensor& token_type_ids, const at::Tensor& attention_mask,
                    const at::Tensor& position_ids = {}, const at::Tensor& branch_ids = {}) const;
  // The batch's additive attention bias for this model (attention_bias()).
  at::Tensor attention_bias(const Batch& b) const;

  // Embedding output after LayerNorm (and dropout when train). `rows` replaces some rows' embeddings
  // (gradient-masked row training, prompt encoders); null = the model's own input rows, if set.
  at::Tensor embed(const Batch& b, bool train, const RowOverride* rows = nullptr) const;
  // The last layer's output as the head reads it: after the final LayerNorm where the family has one (GPT-2's
  // ln_f), else x itself.
  at::Tensor final_norm(const at::Tensor& x) const;
  // Last hidden states [B, T, H] (after final_norm()). recompute: keep only each layer's input for backward and run the
  // layer again there (less memory, about a third more compute; CPU dropout only — on CUDA with dropout it is not
  // used). precision: of the encoder's GEMMs (see encoder_layer.h); the hidden states are fp32 either way.
  at::Tensor encode(const Batch& b, bool train, const RowOverride* rows = nullptr, bool recompute = false,
                    Precision precision = Precision::Fp32) const;
  // One encoder layer on x [B, T, H] with mask_bias [B, 1, 1, T] (attention_mask_bias()); with `rows`, on x [n, H]
  // packed (layer::forward).
  at::Tensor layer_forward(int64_t i, const at::Tensor& x, const at::Tensor& mask_bias, bool train,
                           Precision precision = Precision::Fp32, const at::Tensor& rows = {}) const;
  // Layer i's GEMM operands in `precision`. Without autograd through the weights they are built once and reused
  // until a weight changes (its version counter moves); with it they are built from the weights each call.
  LayerOperands operands(int64_t i, Precision precision) const;
  // Inference on CPU in tasks on the thread pool (default) or as one plain forward pass (for comparisons).
  void set_task_scheduling(bool on) { task_scheduling_ = on; }
  bool task_scheduling() const { return task_scheduling_; }
  // Without autograd on CPU, the layer's dense steps and attention through oneDNN directly (onednn_primitives.h;
  // default where the build has it) or through ATen's ops (for comparisons).
  void set_onednn_kernels(bool on) { onednn_kernels_ = on && onednn::compiled(); }
  bool onednn_kernels() const { return onednn_kernels_; }
  // Training on CPU runs the layers' row-wise steps for the real tokens only (encode(); default on) or for every row
  // (for comparisons).
  void set_row_packing(bool on) { row_packing_ = on; }
  bool row_packing() const { return row_packing_; }
  // The LM head on selected hidden rows [M, H] -> full-vocabulary logits [M, V] (BERT: the MLM head's transform, the
  // decoder and its bias; GPT-2: the decoder alone). precision Bf16 (on CPU): the
  // vocabulary GEMM in bf16 (oneDNN) with bf16 logits, as CUDA autocast runs it; callers normalise in fp32.
  at::Tensor mlm_logits(const at::Tensor& hidden_rows, const RowOverride* rows = nullptr,
                        Precision precision = Precision::Fp32) const;
  // The LM head's transform on hidden rows [M, H] -> [M, E] (BERT: dense, activation, LayerNorm; GPT-2: the rows
  // themselves): what the decoder multiplies.
  at::Tensor head_transform(const at::Tensor& hidden_rows) const;
  // The decoder [V, E] and its bias [V] in `precision`: the weights themselves in fp32; for Bf16 a copy made once and
  // reused until either weight changes (its version counter moves), without autograd (scoring's normaliser).
  std::pair<at::Tensor, at::Tensor> decoder_operands(Precision precision) const;

  // P-tuning with a prompt encoder: these rows' *input* embeddings are replaced by `values` ([rows, H]) in every
  // forward pass, while the output projection keeps the word-embedding matrix. Undefined tensors clear it.
  void set_input_rows(const at::Tensor& rows, const at::Tensor& values);
  const at::Tensor& input_rows() const { return input_rows_; }
  const at::Tensor& input_values() const { return input_values_; }
  // Writes rows of the word-embedding matrix (input and tied output side), e.g. a loaded raw-row prompt.
  void set_embedding_rows(const at::Tensor& rows, const at::Tensor& values);

  // Adds a trainable tensor outside the MLM (e.g. a classifier head); if the checkpoint had a tensor of that
  // name and shape among its unexpected ones, that one is adopted instead of `init`. Returns true if adopted.
  bool add_param(const std::string& name, const at::Tensor& init);
  bool has_param(const std::string& name) const { return params_.count(name) > 0; }

  // Saves config.json + safetensors weights (tied decoder omitted, unexpected tensors kept) and copies the
  // tokenizer files of the source directory, so that the result loads in HF transformers and here.
  void save(const std::string& dir, uint64_t max_shard_bytes = 0) const;

 private:
  BertModel() : device_(at::kCPU) {}

  BertConfig config_;
  LoadReport report_;
  at::Device device_;
  std::string source_dir_;
  std::map<std::string, at::Tensor> params_;
  std::vector<LayerWeights> layers_;  // views of params_ by layer, resolved at load
  bool task_scheduling_ = true;
  bool onednn_kernels_ = onednn::compiled();
  bool row_packing_ = true;
  struct OperandCache {
    std::vector<LayerOperands> layers;
    std::vector<std::pair<const void*, int64_t>> stamps;  // (tensor, version) of every source weight
  };
  mutable std::mutex cache_mu_;
  mutable std::map<int, OperandCache> operand_cache_;                   // by Precision
  LayerOperands cached_operands(int64_t i, Precision precision) const;  // operands() without autograd
  struct DecoderCache {
    at::Tensor decoder, bias;
    std::vector<std::pair<const void*, int64_t>> stamps;
  };
  mutable DecoderCache bf16_decoder_;  // decoder_operands(Bf16), under cache_mu_
  NamedTensors extras_;
  at::Tensor input_rows_, input_values_;
  at::Tensor zero_bias_;  // [V] zeros: the decoder's bias where the family has none (GPT-2)
};

}  // namespace petcore
