// What differs between the checkpoint families in their files: the tensors' names and shapes, which are stored
// input-major (HF's Conv1D, GPT-2's projections), HF's own renames, and which tensors are dropped on purpose. The
// layer kernel sees one LayerWeights whatever the family (encoder_layer.h).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "model/config.h"
#include "model/encoder_layer.h"

namespace petcore {

struct TensorSpec {
  std::string name;            // HF's name
  std::vector<int64_t> shape;  // as the model holds it: a projection is [out, in]
  bool input_major = false;    // the file holds the transpose ([in, out], HF's Conv1D)
};

// The names and shapes a model with this config must have.
std::vector<TensorSpec> expected_tensors(const BertConfig& c);

// The tensors outside the layers, by role; empty where the family has none.
struct ModelNames {
  std::string word, position, token_type, embed_ln_w, embed_ln_b;  // embeddings
  std::string final_ln_w, final_ln_b;                              // after the last layer (pre-LayerNorm families)
  std::string head_dense_w, head_dense_b, head_ln_w, head_ln_b;    // the MLM head's transform
  std::string head_bias, decoder;                                  // output bias, untied decoder
  std::string decoder_bias;                                        // HF's duplicate of head_bias, dropped on load
  std::string task_type;                                           // ERNIE's task-type embeddings
  std::string embed_proj_w, embed_proj_b;                          // ALBERT: embedding_size -> hidden_size
};
const ModelNames& model_names(Family f);

// A checkpoint's name as this model knows it (HF's legacy renames; bare encoders without the family's prefix).
std::string canonical_name(const BertConfig& c, std::string name);

// Tensors a checkpoint may carry that are dropped on purpose: a tied decoder, GPT-2's attention-mask buffers.
bool ignored_tensor(const BertConfig& c, const std::string& name);

// Layer i's tensors, resolved once at load (views where the family fuses what LayerWeights keeps apart).
LayerWeights resolve_layer(const std::map<std::string, at::Tensor>& params, const BertConfig& c, int64_t i);

}  // namespace petcore
