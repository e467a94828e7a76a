#include "model/model_family.h"

#include <stdexcept>

namespace petcore {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string gpt2_layer(int64_t i) { return "transformer.h." + std::to_string(i) + "."; }

// The prefix of the encoder's tensors in the family's *ForMaskedLM (XLM-R's class keeps RoBERTa's names).
std::string encoder_prefix(Family f) {
  switch (f) {
    case Family::Roberta:
    case Family::XlmRoberta: return "roberta.";
    case Family::Albert: return "albert.";
    case Family::Ernie: return "ernie.";
    default: return "bert.";
  }
}

// The tensors of BERT's layer i, and what each family calls them (ALBERT: layer j of group g, one per group).
struct LayerNames {
  std::string prefix;
  const char *query, *key, *value, *attn_out, *attn_ln, *inter, *out, *out_ln;
};

LayerNames layer_names(Family f, int64_t i, int64_t inner = 0) {
  if (f == Family::Albert)
    return {"albert.encoder.albert_layer_groups." + std::to_string(i) + ".albert_layers." + std::to_string(inner) + ".",
            "attention.query",
            "attention.key",
            "attention.value",
            "attention.dense",
            "attention.LayerNorm",
            "ffn",
            "ffn_output",
            "full_layer_layer_norm"};
  return {encoder_prefix(f) + "encoder.layer." + std::to_string(i) + ".",
          "attention.self.query",
          "attention.self.key",
          "attention.self.value",
          "attention.output.dense",
          "attention.output.LayerNorm",
          "intermediate.dense",
          "output.dense",
          "output.LayerNorm"};
}

// The layers whose parameters the file holds: ALBERT's groups x inner layers; one per pass elsewhere.
std::vector<LayerNames> stored_layers(const BertConfig& c) {
  std::vector<LayerNames> out;
  const bool albert = c.family == Family::Albert;
  for (int64_t g = 0; g < (albert ? c.num_hidden_groups : c.num_hidden_layers); ++g)
    for (int64_t j = 0; j < (albert ? c.inner_group_num : 1); ++j) out.push_back(layer_names(c.family, g, j));
  return out;
}

ModelNames bert_like_names(Family f) {
  const std::string e = encoder_prefix(f) + "embeddings.";
  ModelNames n;
  n.word = e + "word_embeddings.weight";
  n.position = e + "position_embeddings.weight";
  n.token_type = e + "token_type_embeddings.weight";
  n.embed_ln_w = e + "LayerNorm.weight";
  n.embed_ln_b = e + "LayerNorm.bias";
  // The MLM head: BERT's and ERNIE's cls.predictions.transform, RoBERTa's lm_head, ALBERT's predictions.
  const std::string h = f == Family::Roberta || f == Family::XlmRoberta ? "lm_head."
                        : f == Family::Albert                           ? "predictions."
                                                                        : "cls.predictions.";
  if (f == Family::Roberta || f == Family::XlmRoberta) {
    n.head_dense_w = h + "dense.weight", n.head_dense_b = h + "dense.bias";
    n.head_ln_w = h + "layer_norm.weight", n.head_ln_b = h + "layer_norm.bias";
  } else if (f == Family::Albert) {
    n.head_dense_w = h + "dense.weight", n.head_dense_b = h + "dense.bias";
    n.head_ln_w = h + "LayerNorm.weight", n.head_ln_b = h + "LayerNorm.bias";
  } else {
    n.head_dense_w = h + "transform.dense.weight", n.head_dense_b = h + "transform.dense.bias";
    n.head_ln_w = h + "transform.LayerNorm.weight", n.head_ln_b = h + "transform.LayerNorm.bias";
  }
  n.head_bias = h + "bias";
  n.decoder = h + "decoder.weight";
  n.decoder_bias = h + "decoder.bias";
  if (f == Family::Ernie) n.task_type = e + "task_type_embeddings.weight";
  if (f == Family::Albert) {
    n.embed_proj_w = "albert.encoder.embedding_hidden_mapping_in.weight";
    n.embed_proj_b = "albert.encoder.embedding_hidden_mapping_in.bias";
  }
  return n;
}

const at::Tensor& find(const std::map<std::string, at::Tensor>& params, const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) throw std::runtime_error("no tensor named \"" + name + "\"");
  return it->second;
}

ModelNames gpt2_names() {
  ModelNames n;  // pre-LayerNorm: no embedding LayerNorm or MLM head transform; the head's bias-free decoder
  n.word = "transformer.wte.weight";
  n.position = "transformer.wpe.weight";
  n.final_ln_w = "transformer.ln_f.weight";
  n.final_ln_b = "transformer.ln_f.bias";
  n.decoder = "lm_head.weight";
  return n;
}

}  // namespace

const ModelNames& model_names(Family f) {
  static const ModelNames bert = bert_like_names(Family::Bert), roberta = bert_like_names(Family::Roberta),
                          albert = bert_like_names(Family::Albert), ernie = bert_like_names(Family::Ernie);
  static const ModelNames gpt2 = gpt2_names();
  switch (f) {
    case Family::Gpt2: return gpt2;
    case Family::Roberta:
    case Family::XlmRoberta: return roberta;
    case Family::Albert: return albert;
    case Family::Ernie: return ernie;
    default: return bert;
  }
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
  // BERT-like: embeddings E wide (E == H but in ALBERT), the layers, the MLM head (its transform ends E wide).
  const int64_t E = c.embedding_size;
  e = {{n.word, {V, E}},
       {n.position, {P, E}},
       {n.token_type, {c.type_vocab_size, E}},
       {n.embed_ln_w, {E}},
       {n.embed_ln_b, {E}}};
  if (!n.task_type.empty() && c.task_type_vocab_size > 0) e.push_back({n.task_type, {c.task_type_vocab_size, E}});
  if (!n.embed_proj_w.empty()) {
    e.push_back({n.embed_proj_w, {H, E}});
    e.push_back({n.embed_proj_b, {H}});
  }
  for (const LayerNames& l : stored_layers(c)) {
    const std::string& p = l.prefix;
    for (const char* m : {l.query, l.key, l.value, l.attn_out}) {
      e.push_back({p + m + ".weight", {H, H}});
      e.push_back({p + m + ".bias", {H}});
    }
    e.push_back({p + l.attn_ln + ".weight", {H}});
    e.push_back({p + l.attn_ln + ".bias", {H}});
    e.push_back({p + l.inter + ".weight", {I, H}});
    e.push_back({p + l.inter + ".bias", {I}});
    e.push_back({p + l.out + ".weight", {H, I}});
    e.push_back({p + l.out + ".bias", {H}});
    e.push_back({p + l.out_ln + ".weight", {H}});
    e.push_back({p + l.out_ln + ".bias", {H}});
  }
  e.push_back({n.head_dense_w, {E, H}});
  e.push_back({n.head_dense_b, {E}});
  e.push_back({n.head_ln_w, {E}});
  e.push_back({n.head_ln_b, {E}});
  e.push_back({n.head_bias, {V}});
  if (!c.tie_word_embeddings) e.push_back({n.decoder, {V, E}});
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
    name = encoder_prefix(c.family) + name;
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
    return {qkv_w.narrow(0, 0, H),   qkv_b.narrow(0, 0, H),     qkv_w.narrow(0, H, H),
            qkv_b.narrow(0, H, H),   qkv_w.narrow(0, 2 * H, H), qkv_b.narrow(0, 2 * H, H),
            w("attn.c_proj.weight"), w("attn.c_proj.bias"),     w("ln_1.weight"),
            w("ln_1.bias"),          w("mlp.c_fc.weight"),      w("mlp.c_fc.bias"),
            w("mlp.c_proj.weight"),  w("mlp.c_proj.bias"),      w("ln_2.weight"),
            w("ln_2.bias")};
  }
  // Pass i's layer (ALBERT: inner layer i % inner of group (i / inner) * groups / layers).
  LayerNames l = layer_names(c.family, i);
  if (c.family == Family::Albert) {
    const int64_t pass = i / c.inner_group_num;
    l = layer_names(c.family, pass * c.num_hidden_groups / c.num_hidden_layers, i % c.inner_group_num);
  }
  auto w = [&](const char* m, const char* kind) { return find(params, l.prefix + m + kind); };
  return {w(l.query, ".weight"),   w(l.query, ".bias"),   w(l.key, ".weight"),      w(l.key, ".bias"),
          w(l.value, ".weight"),   w(l.value, ".bias"),   w(l.attn_out, ".weight"), w(l.attn_out, ".bias"),
          w(l.attn_ln, ".weight"), w(l.attn_ln, ".bias"), w(l.inter, ".weight"),    w(l.inter, ".bias"),
          w(l.out, ".weight"),     w(l.out, ".bias"),     w(l.out_ln, ".weight"),   w(l.out_ln, ".bias")};
}

}  // namespace petcore
