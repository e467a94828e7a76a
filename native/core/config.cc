#include "config.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace petcore {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& msg) {
  throw std::runtime_error(source + ": " + msg);
}

int64_t positive_int(const nlohmann::json& j, const char* key, const std::string& source, bool required,
                     int64_t fallback) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) fail(source, std::string("config has no \"") + key + "\"");
    return fallback;
  }
  const auto& v = j[key];
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    fail(source, std::string("\"") + key + "\" must be a positive integer, got " + v.dump());
  return v.get<int64_t>();
}

double probability(const nlohmann::json& j, const char* key, const std::string& source, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() >= 1)
    fail(source, std::string("\"") + key + "\" must be a number in [0, 1), got " + v.dump());
  return v.get<double>();
}

}  // namespace

BertConfig parse_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail(source, "config must be a JSON object");
  BertConfig c;
  c.raw = j;
  if (j.contains("model_type") && j["model_type"].is_string()) {
    const auto mt = j["model_type"].get<std::string>();
    // RoBERTa proper shifts positions by padding_idx + 1; only BERT-layout models are handled.
    if (mt != "bert") fail(source, "unsupported model_type \"" + mt + "\" (only BERT-family checkpoints)");
  }
  c.vocab_size = positive_int(j, "vocab_size", source, true, 0);
  c.hidden_size = positive_int(j, "hidden_size", source, true, 0);
  c.num_hidden_layers = positive_int(j, "num_hidden_layers", source, true, 0);
  c.num_attention_heads = positive_int(j, "num_attention_heads", source, true, 0);
  c.intermediate_size = positive_int(j, "intermediate_size", source, true, 0);
  c.max_position_embeddings = positive_int(j, "max_position_embeddings", source, false, 512);
  c.type_vocab_size = positive_int(j, "type_vocab_size", source, false, 2);
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"];
  if (j.contains("layer_norm_eps")) {
    if (!j["layer_norm_eps"].is_number() || j["layer_norm_eps"].get<double>() <= 0)
      fail(source, "\"layer_norm_eps\" must be a positive number");
    c.layer_norm_eps = j["layer_norm_eps"];
  }
  c.hidden_dropout_prob = probability(j, "hidden_dropout_prob", source, 0.1);
  c.attention_probs_dropout_prob = probability(j, "attention_probs_dropout_prob", source, 0.1);
  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    if (!j["hidden_act"].is_string()) fail(source, "\"hidden_act\" must be a string");
    const auto act = j["hidden_act"].get<std::string>();
    if (act == "gelu") c.hidden_act = Activation::Gelu;
    else if (act == "gelu_new" || act == "gelu_pytorch_tanh") c.hidden_act = Activation::GeluTanh;
    else if (act == "relu") c.hidden_act = Activation::Relu;
    else fail(source, "unsupported hidden_act \"" + act + "\" (gelu, gelu_new, gelu_pytorch_tanh, relu)");
  }
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean())
    c.tie_word_embeddings = j["tie_word_embeddings"];
  if (c.hidden_size % c.num_attention_heads != 0)
    fail(source, "hidden_size " + std::to_string(c.hidden_size) + " is not a multiple of num_attention_heads " +
                     std::to_string(c.num_attention_heads));
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
