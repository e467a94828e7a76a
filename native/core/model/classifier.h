// A plain sequence classifier on the same encoder (the summary token's hidden state -> dropout -> linear), the
// baseline that PET beats and the student that PET's ensemble distils into. Its tensors are "classifier.weight" /
// "classifier.bias". The summary token is [CLS] for a bidirectional encoder; a causal LM's first token sees nothing
// else, so there it is the last non-padding token (as HF's GPT2ForSequenceClassification).
#pragma once
#include <cstdint>

#include <ATen/ATen.h>

#include "model/bert_model.h"

namespace petcore {

// Adds the head (HF's initialisation: weights N(0, 0.02), bias 0, from `seed`), or adopts the checkpoint's own
// head of the same shape. Returns true when the checkpoint's head was adopted.
bool ensure_classifier(BertModel& m, int64_t num_labels, uint64_t seed);

int64_t classifier_labels(const BertModel& m);   // 0 when there is no head
int64_t require_classifier(const BertModel& m);  // the label count; throws when there is no head

// [B, 2] (row, column) of each row's summary token: [CLS] (column 0), or a causal LM's last non-padding token.
at::Tensor summary_positions(const BertModel& m, const Batch& b);

// [B, L] logits from the last hidden states at the summary tokens, [B, H] (dropout when training).
at::Tensor classifier_logits(const BertModel& m, const at::Tensor& cls, bool train);

// Inference: [B, L] fp32 logits on the CPU.
at::Tensor classify(const BertModel& m, const Batch& b, Precision precision = Precision::Fp32);

}  // namespace petcore
