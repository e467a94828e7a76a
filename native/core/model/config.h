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
// The other masked LMs are BERT's layer with small named differences (fields below): RoBERTa and XLM-R (positions
// offset past the padding id), ALBERT (factorised embeddings, layers sharing parameters by group), ERNIE (task types).
enum class Family { Bert, Gpt2, Roberta, XlmRoberta, Albert, Ernie };

const char* family_name(Family f);

// NOLINTNEXTLINE(bugprone-exception-escape): the implicit constructors can throw only std::bad_alloc (json member).
struct BertConfig {
  Family family = Family::Bert;
  // The layer's named variants (encoder_layer.h), set from the family: LayerNorm before each sub-block (and once
  // more after the last layer) instead of after each residual sum; each token attending only to itself and what
  // comes before it.
  bool pre_norm = false;
  bool causal = false;
  // RoBERTa: position ids start after the padding id (pad_token_id + 1), and padding tokens take the padding id's
  // position, as fairseq numbers them; the usable sequence length is max_position_embeddings - position_offset.
  int64_t position_offset = 0;
  // ALBERT: the word, position and token-type embeddings (and the MLM head's output side) are embedding_size wide,
  // projected to hidden_size before the first layer; elsewhere embedding_size == hidden_size.
  int64_t embedding_size = 0;
  // ALBERT: num_hidden_layers passes over num_hidden_groups groups of inner_group_num layers each (pass i uses group
  // i * groups / layers), so layers share parameters.
  int64_t num_hidden_groups = 1;
  int64_t inner_group_num = 1;
  // ERNIE (use_task_id): a task-type embedding table; every token takes row 0, as HF does without task_type_ids.
  int64_t task_type_vocab_size = 0;
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
  // Layer passes of the forward pass (ALBERT: each pass runs a group's inner layers).
  int64_t layer_passes() const { return num_hidden_layers * inner_group_num; }
  int64_t max_sequence_length() const { return max_position_embeddings - position_offset; }
};

// The most layer passes a config may ask for (num_hidden_layers x ALBERT's inner_group_num).
constexpr int64_t kMaxLayerPasses = 1024;

// Parses and validates; throws std::runtime_error naming the field and the file.
BertConfig parse_config(const nlohmann::json& j, const std::string& source);
BertConfig load_config(const std::string& path);

}  // namespace petcore
