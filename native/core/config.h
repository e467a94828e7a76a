// Model hyper-parameters read from a Hugging Face config.json: the family (which checkpoint layout and which
// variant of the one encoder layer) and its sizes, in BERT's names whatever the family calls them.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace petcore {

enum class Activation { Gelu, GeluTanh, Relu };

// The checkpoint families that load. Bert: BertForMaskedLM (post-LayerNorm layers, bidirectional attention, an MLM
// head). Gpt2: GPT2LMHeadModel (pre-LayerNorm layers, causal attention, a final LayerNorm, the LM head tied to wte).
enum class Family { Bert, Gpt2 };

const char* family_name(Family f);

struct BertConfig {
  Family family = Family::Bert;
  // The layer's named variants (encoder_layer.h), set from the family: LayerNorm before each sub-block (and once
  // more after the last layer) instead of after each residual sum; each token attending only to itself and what
  // comes before it.
  bool pre_norm = false;
  bool causal = false;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;  // 0: no token-type embeddings (GPT-2)
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;
  double embedding_dropout_prob = 0.1;  // BERT: hidden_dropout_prob; GPT-2: embd_pdrop
  double attention_probs_dropout_prob = 0.1;
  Activation hidden_act = Activation::Gelu;
  bool tie_word_embeddings = true;
  // The file as read, so that saving keeps every field HF wrote (architectures, versions, ...).
  nlohmann::json raw;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// Parses and validates; throws std::runtime_error naming the field and the file.
BertConfig parse_config(const nlohmann::json& j, const std::string& source);
BertConfig load_config(const std::string& path);

}  // namespace petcore
