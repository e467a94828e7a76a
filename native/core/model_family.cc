#include "model_family.h"

#include <stdexcept>

namespace petcore {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string bert_layer(int64_t i) { return "bert.encoder.layer." + std::to_string(i) + "."; }
std::string gpt2_layer(int64_t i) { return "transformer.h." + std::to_string(i) + "."; }

const at::Tensor& find(const std::map<std::string, at::Tensor>& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) throw std::runtime_error("no tensor named \"" + name + "\"");
  return it->second;
}

}  // namespace

const ModelNames& model_names(Family f) {
  static const ModelNames bert{"bert.embeddings.word_embeddings.weight",
                               "bert.embeddings.position_embeddings.weight",
                               "bert.embeddings.token_type_embeddings.weight",
                               "bert.embeddings.LayerNorm.weight",
                               "bert.embeddings.LayerNorm.bias",
                               "",
                               "",
                               "cls.predictions.transform.dense.weight",
                               "cls.predictions.transform.dense.bias",
                               "cls.predictions.transform.LayerNorm.weight",
                               "cls.predictions.transform.LayerNorm.bias",
                               "cls.predictions.bias",
                               "cls.predictions.decoder.weight"};
  static const ModelNames gpt2{"transformer.wte.weight", "transformer.wpe.weight", "", "", "", "transformer.ln_f.weight",
                               "transformer.ln_f.bias", "", "", "", "", "", "lm_head.weight"};
  return f == Family::Gpt2 ? gpt2 : bert;
}

std::vector<TensorSpec> expected_tensors(const BertConfig& c) {
  const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size, P = c.max_position_embeddings;
  const ModelNames& n = model_names(c.family);
  std::vector<TensorSpec> e;
  if (c.family == Family::Gpt2) {
    e = {{n.word, {V, H}}, {n.position, {P, H}}};
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = gpt2_layer(i);
      e.push_back({p + "ln_1.weight", {H}});
      e.push_back({p + "ln_1.bias", {H}});
      e.push_back({p + "attn.c_attn.weight", {3 * H, H}, true});
      e.push_back({p + "attn.c_attn.bias", {3 * H}});
      e.push_back({p + "attn.c_proj.weight", {H, H}, true});
      e.push_back({p + "attn.c_proj.bias", {H}});
      e.push_back({p + "ln_2.weight", {H}});
      e.push_back({p + "ln_2.bias", {H}});
      e.push_back({p + "mlp.c_fc.weight", {I, H}, true});
      e.push_back({p + "mlp.c_fc.bias", {I}});
      e.push_back({p + "mlp.c_proj.weight", {H, I}, true});
      e.push_back({p + "mlp.c_proj.bias", {H}});
    }
    e.push_back({n.final_ln_w, {H}});
    e.push_back({n.final_ln_b, {H}});
    if (!c.tie_word_embeddings) e.push_back({n.decoder, {V, H}});
    return e;
  }
  e = {{n.word, {V, H}},
       {n.position, {P, H}},
       {n.token_type, {c.type_vocab_size, H}},
       {n.embed_ln_w, {H}},
       {n.embed_ln_b, {H}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = bert_layer(i);
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
  e.push_back({n.head_dense_w, {H, H}});
  e.push_back({n.head_dense_b, {H}});
  e.push_back({n.head_ln_w, {H}});
  e.push_back({n.head_ln_b, {H}});
  e.push_back({n.head_bias, {V}});
  if (!c.tie_word_embeddings) e.push_back({n.decoder, {V, H}});
  return e;
}

std::string canonical_name(const BertConfig& c, std::string name) {
  if (c.family == Family::Gpt2) {
    // A bare GPT2Model's checkpoint has no "transformer." prefix.
    if (starts_with(name, "wte.") || starts_with(name, "wpe.") || starts_with(name, "h.") || starts_with(name, "ln_f."))
      name = "transformer." + name;
    return name;
  }
  // Legacy TF LayerNorm names, and checkpoints of a bare BertModel without the "bert." prefix.
  if (ends_with(name, "LayerNorm.gamma")) name = name.substr(0, name.size() - 5) + "weight";
  else if (ends_with(name, "LayerNorm.beta")) name = name.substr(0, name.size() - 4) + "bias";
  if (starts_with(name, "embeddings.") || starts_with(name, "encoder.") || starts_with(name, "pooler."))
    name = "bert." + name;
  return name;
}

bool ignored_tensor(const BertConfig& c, const std::string& name) {
  if (c.tie_word_embeddings && name == model_names(c.family).decoder) return true;  // the word embeddings are it
  // Older GPT-2 checkpoints store the causal mask as buffers.
  return c.family == Family::Gpt2 && starts_with(name, "transformer.h.") &&
         (ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias"));
}

LayerWeights resolve_layer(const std::map<std::string, at::Tensor>& params, const BertConfig& c, int64_t i) {
  if (c.family == Family::Gpt2) {
    const std::string p = gpt2_layer(i);
    auto w = [&](const std::string& n) { return find(params, p + n); };
    // c_attn is one [3H, H] projection (queries | keys | values): LayerWeights holds views of its blocks.
    const int64_t H = c.hidden_size;
    const at::Tensor qkv_w = w("attn.c_attn.weight"), qkv_b = w("attn.c_attn.bias");
    return {qkv_w.narrow(0, 0, H), qkv_b.narrow(0, 0, H), qkv_w.narrow(0, H, H), qkv_b.narrow(0, H, H),
            qkv_w.narrow(0, 2 * H, H), qkv_b.narrow(0, 2 * H, H), w("attn.c_proj.weight"), w("attn.c_proj.bias"),
            w("ln_1.weight"), w("ln_1.bias"), w("mlp.c_fc.weight"), w("mlp.c_fc.bias"), w("mlp.c_proj.weight"),
            w("mlp.c_proj.bias"), w("ln_2.weight"), w("ln_2.bias")};
  }
  const std::string p = bert_layer(i);
  auto w = [&](const std::string& n) { return find(params, p + n); };
  return {w("attention.self.query.weight"), w("attention.self.query.bias"), w("attention.self.key.weight"),
          w("attention.self.key.bias"), w("attention.self.value.weight"), w("attention.self.value.bias"),
          w("attention.output.dense.weight"), w("attention.output.dense.bias"), w("attention.output.LayerNorm.weight"),
          w("attention.output.LayerNorm.bias"), w("intermediate.dense.weight"), w("intermediate.dense.bias"),
          w("output.dense.weight"), w("output.dense.bias"), w("output.LayerNorm.weight"), w("output.LayerNorm.bias")};
}

}  // namespace petcore
