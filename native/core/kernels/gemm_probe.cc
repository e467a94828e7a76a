#include "kernels/gemm_probe.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "kernels/cpu_threads.h"
#include "kernels/onednn_primitives.h"

namespace petcore {

double gemm_gflops(int64_t rows, int64_t in, int64_t out, Precision precision, int threads, bool onednn,
                   double min_seconds) {
  c10::InferenceMode guard;
  threads = std::max(1, threads);
  const at::ScalarType dtype = precision == Precision::Bf16 ? at::kBFloat16 : at::kFloat;
  // Each participant its own operands and output, as the tasks of the inference path have.
  std::vector<at::Tensor> x, w, b, y;
  for (int t = 0; t < threads; ++t) {
    x.push_back(at::randn({rows, in}).to(dtype));
    w.push_back(at::randn({out, in}).to(dtype));
    b.push_back(at::randn({out}).to(dtype));
    y.push_back(at::empty({rows, out}, at::TensorOptions().dtype(dtype)));
  }
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  TaskPool& pool = TaskPool::get();
  auto round = [&](int64_t reps) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(threads, reps * threads, [&](int64_t i) {
      const size_t k = static_cast<size_t>(i % threads);
      layer::dense(x[k], w[k], b[k], y[k], onednn);
    });
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  round(2);  // warm-up: packing buffers, oneDNN primitives
  int64_t reps = 4;
  while (round(reps) < min_seconds / 8 && reps < (1 << 20)) reps *= 2;
  double best = 1e30;
  for (int r = 0; r < 4; ++r) best = std::min(best, round(reps));
  return 2.0 * static_cast<double>(rows * in * out) * static_cast<double>(reps * threads) / best / 1e9;
}

}  // namespace petcore
