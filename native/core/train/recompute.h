// Activation recomputation ("gradient checkpointing") per encoder layer: the forward pass keeps only each
// layer's input; backward runs the layer again. Frozen P-tuning uses it to cut peak memory.
#pragma once
#include <ATen/ATen.h>

#include "model/bert_model.h"

namespace petcore {

// Layer i on x as BertModel::layer_forward does, with its activations recomputed in backward. Dropout draws
// the same masks again (the CPU generator's state is replayed).
at::Tensor recomputed_layer(const BertModel& m, int64_t i, const at::Tensor& x, const at::Tensor& mask_bias, bool train,
                            Precision precision = Precision::Fp32, const at::Tensor& rows = {});

}  // namespace petcore
