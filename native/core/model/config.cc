#include "model/config.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace petcore {
namespace {

[[noreturn]] void config_fail(const std::string& source, const std::string& msg) {
  throw std::runtime_error(source + ": " + msg);
}

int64_t positive_int(const nlohmann::json& j, const char* key, const std::string& source, bool required,
                     int64_t fallback) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) config_fail(source, std::string("config has no \"") + key + "\"");
    return fallback;
  }
  const auto& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    config_fail(source, std::string("\"") + key + "\" must be a positive integer, got " + v.dump());
  return v.get<int64_t>();
}

double probability(const nlohmann::json& j, const char* key, const std::string& source, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() >= 1)
    config_fail(source, std::string("\"") + key + "\" must be a number in [0, 1), got " + v.dump());
  return v.get<double>();
}

}  // namespace

const char* family_name(Family f) {
  switch (f) {
    case Family::Gpt2: return "gpt2";
    case Family::Roberta: return "roberta";
    case Family::XlmRoberta: return "xlm-roberta";
    case Family::Albert: return "albert";
    case Family::Ernie: return "ernie";
    default: return "bert";
  }
}

namespace {

double positive_number(const nlohmann::json& j, const char* key, const std::string& source, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number() || j[key].get<double>() <= 0)
    config_fail(source, std::string("\"") + key + "\" must be a positive number");
  return j[key].get<double>();
}

Activation activation_named(const nlohmann::json& j, const char* key, const std::string& source, Activation fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) config_fail(source, std::string("\"") + key + "\" must be a string");
  const auto act = j[key].get<std::string>();
  if (act == "gelu") return Activation::Gelu;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return Activation::GeluTanh;
  if (act == "relu") return Activation::Relu;
  config_fail(source, "unsupported " + std::string(key) + " \"" + act + "\" (gelu, gelu_new, gelu_pytorch_tanh, relu)");
}

bool flag(const nlohmann::json& j, const char* key, bool fallback) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

// What config.json names the family: model_type, else the first architecture. Supported ones only.
Family family_of(const nlohmann::json& j, const std::string& source) {
  std::string type;
  if (j.contains("model_type") && j["model_type"].is_string()) type = j["model_type"].get<std::string>();
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    arch = j["architectures"][0].get<std::string>();
  if (type.empty() && arch.rfind("GPT2", 0) == 0) type = "gpt2";
  if (type.empty() || type == "bert") return Family::Bert;
  if (type == "gpt2") return Family::Gpt2;
  if (type == "roberta") return Family::Roberta;
  if (type == "xlm-roberta") return Family::XlmRoberta;
  if (type == "albert") return Family::Albert;
  if (type == "ernie") return Family::Ernie;
  config_fail(source, "unsupported model_type \"" + type + "\"" + (arch.empty() ? "" : " (" + arch + ")") +
                          ": supported are bert (BertForMaskedLM), roberta (RobertaForMaskedLM), xlm-roberta "
                          "(XLMRobertaForMaskedLM), albert (AlbertForMaskedLM), ernie (ErnieForMaskedLM) and gpt2 "
                          "(GPT2LMHeadModel)");
}

void parse_bert(const nlohmann::json& j, const std::string& source, BertConfig& c) {
  c.vocab_size = positive_int(j, "vocab_size", source, true, 0);
  c.hidden_size = positive_int(j, "hidden_size", source, true, 0);
  c.num_hidden_layers = positive_int(j, "num_hidden_layers", source, true, 0);
  c.num_attention_heads = positive_int(j, "num_attention_heads", source, true, 0);
  c.intermediate_size = positive_int(j, "intermediate_size", source, true, 0);
  c.max_position_embeddings = positive_int(j, "max_position_embeddings", source, false, 512);
  c.type_vocab_size = positive_int(j, "type_vocab_size", source, false, 2);
  c.layer_norm_eps = positive_number(j, "layer_norm_eps", source, 1e-12);
  c.hidden_dropout_prob = probability(j, "hidden_dropout_prob", source, 0.1);
  c.embedding_dropout_prob = c.hidden_dropout_prob;
  c.attention_probs_dropout_prob = probability(j, "attention_probs_dropout_prob", source, 0.1);
  c.hidden_act = activation_named(j, "hidden_act", source, Activation::Gelu);
  c.embedding_size = c.hidden_size;
  if (c.family == Family::Roberta || c.family == Family::XlmRoberta) {
    const int64_t pad =
        j.contains("pad_token_id") && j["pad_token_id"].is_number_integer() ? j["pad_token_id"].get<int64_t>() : 1;
    if (pad < 0)
      config_fail(source, "pad_token_id " + std::to_string(pad) + " is negative (RoBERTa's positions count from it)");
    if (pad >= c.max_position_embeddings - 1)  // (pad + 1 could overflow)
      config_fail(source, "max_position_embeddings " + std::to_string(c.max_position_embeddings) +
                              " leaves no positions after the padding offset pad_token_id + 1 = " +
                              std::to_string(pad) + " + 1");
    c.position_offset = pad + 1;
  } else if (c.family == Family::Albert) {
    c.embedding_size = positive_int(j, "embedding_size", source, false, 128);
    c.num_hidden_groups = positive_int(j, "num_hidden_groups", source, false, 1);
    c.inner_group_num = positive_int(j, "inner_group_num", source, false, 1);
    if (c.num_hidden_groups > c.num_hidden_layers)
      config_fail(source, "num_hidden_groups " + std::to_string(c.num_hidden_groups) + " exceeds num_hidden_layers " +
                              std::to_string(c.num_hidden_layers));
  } else if (c.family == Family::Ernie) {
    if (flag(j, "use_task_id", false))
      c.task_type_vocab_size = positive_int(j, "task_type_vocab_size", source, false, 3);
  }
}

// GPT-2's own names (n_embd, n_layer, ...); the variants HF's GPT2 code has and this core does not are refused.
void parse_gpt2(const nlohmann::json& j, const std::string& source, BertConfig& c) {
  c.pre_norm = c.causal = true;
  c.vocab_size = positive_int(j, "vocab_size", source, true, 0);
  c.hidden_size = positive_int(j, "n_embd", source, true, 0);
  c.embedding_size = c.hidden_size;
  c.num_hidden_layers = positive_int(j, "n_layer", source, true, 0);
  c.num_attention_heads = positive_int(j, "n_head", source, true, 0);
  c.intermediate_size = positive_int(j, "n_inner", source, false, 4 * c.hidden_size);
  c.max_position_embeddings = positive_int(j, "n_positions", source, false, 1024);
  c.type_vocab_size = 0;
  c.layer_norm_eps = positive_number(j, "layer_norm_epsilon", source, 1e-5);
  c.hidden_dropout_prob = probability(j, "resid_pdrop", source, 0.1);
  c.embedding_dropout_prob = probability(j, "embd_pdrop", source, 0.1);
  c.attention_probs_dropout_prob = probability(j, "attn_pdrop", source, 0.1);
  c.hidden_act = activation_named(j, "activation_function", source, Activation::GeluTanh);
  if (!flag(j, "scale_attn_weights", true)) config_fail(source, "GPT-2 with scale_attn_weights false is not supported");
  if (flag(j, "scale_attn_by_inverse_layer_idx", false))
    config_fail(source, "GPT-2 with scale_attn_by_inverse_layer_idx is not supported");
  if (flag(j, "add_cross_attention", false)) config_fail(source, "GPT-2 with cross-attention is not supported");
}

}  // namespace

BertConfig parse_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) config_fail(source, "config must be a JSON object");
  BertConfig c;
  c.raw = j;
  c.family = family_of(j, source);
  if (c.family == Family::Gpt2) parse_gpt2(j, source, c);
  else parse_bert(j, source, c);
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"];
  c.tie_word_embeddings = flag(j, "tie_word_embeddings", true);
  if (c.hidden_size % c.num_attention_heads != 0)
    config_fail(source, "hidden_size " + std::to_string(c.hidden_size) + " is not a multiple of num_attention_heads " +
                            std::to_string(c.num_attention_heads));
  // The loader lists what every layer should hold before it reads a weight, and ALBERT's shared layers run once per
  // pass: a corrupt layer count would exhaust memory or never finish, where published models have under 200 layers.
  if (c.num_hidden_layers > kMaxLayerPasses || c.inner_group_num > kMaxLayerPasses / c.num_hidden_layers)
    config_fail(source, std::string(c.family == Family::Gpt2 ? "n_layer " : "num_hidden_layers ") +
                            std::to_string(c.num_hidden_layers) +
                            (c.inner_group_num > 1 ? " x inner_group_num " + std::to_string(c.inner_group_num) : "") +
                            " exceeds the " + std::to_string(kMaxLayerPasses) + " layers supported");
  return c;
}

BertConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": invalid JSON: " + e.what());
  }
  return parse_config(j, path);
}

}  // namespace petcore
