// The CPU's GEMM rate as the inference path gets it: the layer kernel's own dense step (layer::dense: oneDNN called
// directly where the model uses it, else ATen's addmm and its BLAS), one single-threaded GEMM per core, all cores at
// once (the task pool), so that a benchmark can report executed GFLOP/s against what the kernels do in GEMMs alone.
#pragma once
#include <cstdint>

#include "model/encoder_layer.h"

namespace petcore {

// GFLOP/s of [rows, in] x [in, out]^T + bias in `precision` on `threads` cores through the kernels the models run
// (`onednn`: BertModel::set_onednn_kernels), best of a few rounds that each last at least min_seconds / 4.
double gemm_gflops(int64_t rows, int64_t in, int64_t out, Precision precision, int threads, bool onednn,
                   double min_seconds = 0.4);

}  // namespace petcore
