#include "model/classifier.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>
#include <string>

#include "kernels/autocast.h"
#include "kernels/cpu_inference.h"

namespace petcore {

bool ensure_classifier(BertModel& m, int64_t num_labels, uint64_t seed) {
  if (num_labels < 2) throw std::runtime_error("a classifier needs at least 2 labels");
  if (m.has_param("classifier.weight")) {
    const int64_t have = m.param("classifier.weight").size(0);
    if (have != num_labels)
      throw std::runtime_error("the model already has a classifier with " + std::to_string(have) + " labels, not " +
                               std::to_string(num_labels));
    return true;
  }
  const int64_t H = m.config().hidden_size;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor w = at::normal(0.0, 0.02, {num_labels, H}, gen);
  const bool adopted_w = m.add_param("classifier.weight", w);
  const bool adopted_b = m.add_param("classifier.bias", at::zeros({num_labels}));
  return adopted_w && adopted_b;
}

int64_t classifier_labels(const BertModel& m) {
  return m.has_param("classifier.weight") ? m.param("classifier.weight").size(0) : 0;
}

int64_t require_classifier(const BertModel& m) {
  const int64_t L = classifier_labels(m);
  if (L == 0) throw std::runtime_error("the model has no classifier head (add one first)");
  return L;
}

at::Tensor classifier_logits(const BertModel& m, const at::Tensor& cls, bool train) {
  require_classifier(m);
  return at::linear(apply_dropout(cls, m.config().hidden_dropout_prob, train), m.param("classifier.weight"),
                    m.param("classifier.bias"));
}

at::Tensor summary_positions(const BertModel& m, const Batch& b) {
  const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
  const auto opts = at::TensorOptions().dtype(at::kLong).device(b.input_ids.device());
  at::Tensor column = at::zeros({B}, opts);
  if (m.config().causal) {
    // right padding: the last 1 of the attention mask (a row of padding only reads column 0)
    column = b.attention_mask.defined() ? (b.attention_mask.to(at::kLong).sum(1) - 1).clamp_min(0)
                                        : at::full({B}, T - 1, opts);
  }
  return at::stack({at::arange(B, opts), column}, 1);
}

at::Tensor classify(const BertModel& m, const Batch& b, Precision precision) {
  // Fail before the encoder pass, not after it.
  require_classifier(m);
  c10::InferenceMode guard;
  CudaBf16Autocast autocast(precision == Precision::Bf16, m.device());
  // Only the summary rows are read: on the CPU task path the last layer runs for them alone.
  const at::Tensor positions = summary_positions(m, b);
  at::Tensor logits;
  in_inference_scope(m, [&] {
    logits = classifier_logits(m, encode_at_positions(m, b, positions, kernel_precision(precision, m.device())), false);
  });
  return logits.to(at::kCPU, at::kFloat).contiguous();
}

}  // namespace petcore
