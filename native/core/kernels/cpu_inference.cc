#include "kernels/cpu_inference.h"

#include <algorithm>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include "kernels/cpu_threads.h"
#include "kernels/onednn_primitives.h"

namespace petcore {

// Rows per task of the row-wise phases: small enough that a chunk's intermediates ([rows, intermediate])
// stay in a core's cache, large enough for efficient GEMMs.
constexpr int64_t kChunkRows = 512;
constexpr int64_t kChunkAlign = 64;

// Threads for the task inference path, or 0 where the plain path runs: training, autograd, non-CPU devices,
// an OpenMP runtime we cannot find (ops would then oversubscribe the pool). With one thread the tasks run in the
// caller and GEMMs keep OpenBLAS's own threads.
namespace {
// The task count of the enclosing in_inference_scope(), taken before its guard set this thread's OpenMP count
// to 1 (after which at::get_num_threads() here says 1); 0 outside a scope.
thread_local int t_scope_threads = 0;
}  // namespace

int inference_tasks(const BertModel& m, bool train) {
  return m.task_scheduling() ? inference_tasks(m.device(), train) : 0;
}

int inference_tasks(const at::Device& device, bool train) {
  if (train || at::GradMode::is_enabled() || !device.is_cpu() || !can_serialize_ops()) return 0;
  if (t_scope_threads > 0) return t_scope_threads;
  return std::max(1, at::get_num_threads());
}

namespace {

// The vocabulary split for the pool: about four slices per thread, `per` rows of the decoder each.
struct VocabSlices {
  int64_t per, count;
  VocabSlices(int64_t V, int threads) {
    const int64_t chunks = std::min<int64_t>(V, std::max<int64_t>(1, threads) * 4);
    per = (V + chunks - 1) / chunks;
    count = (V + per - 1) / per;
  }
};

// One slice's logits out [M, n] (fp32, or x's dtype) = x [M, E] w [n, E]^T + b, x and w of one dtype: with M = 1 in
// fp32 a GEMV (not a GEMM that packs the slice), else the layer kernel's dense step.
void slice_logits(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor out, bool onednn) {
  if (x.size(0) == 1 && x.scalar_type() == at::kFloat && out.scalar_type() == at::kFloat) {
    at::Tensor o = out.select(0, 0);
    at::addmv_out(o, b, w, x.select(0, 0));
  } else if (out.scalar_type() == x.scalar_type()) {
    layer::dense(x, w, b, out, onednn);
  } else if (!(onednn && onednn::dense(x, w, b, out, nullptr, {}))) {
    out.copy_(at::addmm(b, x, w.t()));
  }
}

}  // namespace

// Full-vocabulary logits [M, V] = h [M, H] x decoder [V, H]^T + bias, over vocabulary slices in tasks: the
// decoder matrix is read once, by all threads.
at::Tensor decode_in_tasks(const at::Tensor& h, const at::Tensor& decoder, const at::Tensor& bias, int threads,
                           bool onednn) {
  const int64_t V = decoder.size(0);
  at::Tensor out = at::empty({h.size(0), V}, h.options());
  const VocabSlices slices(V, threads);
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  TaskPool::get().run(threads, slices.count, [&](int64_t ch) {
    const int64_t v0 = ch * slices.per, n = std::min(slices.per, V - v0);
    slice_logits(h, decoder.narrow(0, v0, n), bias.narrow(0, v0, n), out.narrow(1, v0, n), onednn);
  });
  return out;
}

at::Tensor log_normaliser_in_tasks(const at::Tensor& h, const at::Tensor& decoder, const at::Tensor& bias, int threads,
                                   bool onednn) {
  const at::Tensor x = h.to(decoder.scalar_type()).contiguous();
  const int64_t M = x.size(0), V = decoder.size(0);
  const VocabSlices slices(V, threads);
  const at::TensorOptions f32 = x.options().dtype(at::kFloat);
  at::Tensor maxes = at::empty({slices.count, M}, f32), sums = at::empty({slices.count, M}, f32);
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  TaskPool::get().run(std::max(1, threads), slices.count, [&](int64_t ch) {
    const int64_t v0 = ch * slices.per, n = std::min(slices.per, V - v0);
    at::Tensor logits = at::empty({M, n}, f32);
    slice_logits(x, decoder.narrow(0, v0, n), bias.narrow(0, v0, n), logits, onednn);
    const at::Tensor mx = std::get<0>(logits.max(1));
    maxes[ch].copy_(mx);
    sums[ch].copy_(logits.sub_(mx.unsqueeze(1)).exp_().sum(1));
  });
  const at::Tensor top = std::get<0>(maxes.max(0));  // [M]
  return top + sums.mul_(maxes.sub_(top.unsqueeze(0)).exp_()).sum(0).log_();
}

// The encoder without autograd on CPU: the layer kernel's pieces (encoder_layer.h) in tasks, as described above.
// With `positions` ([M, 2] (row, column) pairs, int64, validated) it returns only the last hidden states at those
// positions, [M, H]: the last layer then needs keys and values for every token but queries, attention output,
// feed-forward and LayerNorms only for the M rows.
at::Tensor encode_in_tasks(const BertModel& m, const Batch& b, const RowOverride* rows, int threads,
                           const at::Tensor& positions, Precision precision) {
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  const BertConfig& c = m.config();
  at::Tensor x = m.embed(b, false, rows);  // [B, T, H]
  const int64_t B = x.size(0), T = x.size(1), H = c.hidden_size;
  const int64_t R = B * T;
  x = x.reshape({R, H}).contiguous();
  const at::Tensor mask_bias = m.attention_bias(b);  // [B, 1, 1, T], or [B, 1, T, T] (causal, branches)
  const bool per_query = mask_bias.size(2) > 1;

  std::vector<LayerOperands> L;
  for (int64_t i = 0; i < c.layer_passes(); ++i) L.push_back(m.operands(i, precision));
  const int64_t nl = static_cast<int64_t>(L.size());
  const bool select = positions.defined();
  const int64_t full = select ? nl - 1 : nl;  // layers computed for every row

  // Row chunks: at least one per thread, a multiple of the thread count, at most kChunkRows rows each.
  // Rows per chunk rounded up to a multiple of kChunkAlign (where that leaves a chunk per thread): oneDNN (bf16)
  // builds a GEMM primitive per new shape, about 1 ms each; with aligned chunks, batches of other lengths mostly
  // reuse the full chunks' shapes and only the last chunk's is new.
  auto chunking = [&](int64_t rows) {
    int64_t n = std::max<int64_t>(threads, (rows + kChunkRows - 1) / kChunkRows);
    n = std::min<int64_t>(rows, (n + threads - 1) / threads * threads);
    const int64_t per = (rows + n - 1) / n, aligned = (per + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
    return (rows + aligned - 1) / aligned >= std::min<int64_t>(threads, n) ? aligned : per;
  };
  const int64_t per = chunking(R), chunks = (R + per - 1) / per;

  const at::TensorOptions gemm_opts = x.options().dtype(L.empty() ? at::kFloat : L[0].dtype);
  at::Tensor qkv = at::empty({R, 3 * H}, gemm_opts);
  at::Tensor ctx = at::empty({R, H}, gemm_opts);
  // The residual stream by row chunk: each layer's finish() makes a chunk's new rows, kept as they are (no copy
  // into a [R, H] buffer); attention reads only qkv.
  std::vector<at::Tensor> xs(static_cast<size_t>(chunks));
  for (int64_t ch = 0; ch < chunks; ++ch) xs[ch] = x.narrow(0, ch * per, std::min(per, R - ch * per));

  // Projections of row chunk ch for layer i (keys and values only where just some rows go on).
  auto project = [&](int64_t i, int64_t ch) {
    const at::Tensor out = qkv.narrow(0, ch * per, xs[ch].size(0));
    const at::Tensor in = layer::input_norm(c, L[i], xs[ch]);
    if (i < full) layer::project(L[i], in, 0, 3, out);
    else layer::project(L[i], in, 1, 2, out.narrow(1, H, 2 * H));
  };
  // In place through oneDNN: query rows q [n, H] of sequence bi, into out [n, H]; without the mask where the
  // sequence has no padding (the mask's pass costs a third of the scores' GEMM at these shapes). Keys are not cut
  // to each sequence's length: every length would be a new GEMM shape (a new oneDNN primitive), slower overall.
  // The queries q are the rows of sequence bi from column col on (the mask's rows, where each query has its own).
  const std::vector<bool> no_mask =
      per_query ? std::vector<bool>(static_cast<size_t>(B), false) : unpadded(b.attention_mask);
  auto attend_in_place = [&](int64_t i, const at::Tensor& q, int64_t bi, int64_t col, const at::Tensor& out) {
    const at::Tensor seq = qkv.narrow(0, bi * T, T);
    const at::Tensor mask = no_mask[static_cast<size_t>(bi)] ? at::Tensor() : query_bias(mask_bias, bi, col, q.size(0));
    return layer::attend_in_place(c, L[i], q, seq.narrow(1, H, H), seq.narrow(1, 2 * H, H), mask, out);
  };
  // Attention for query rows q [n, H] of sequence bi from column col, into out [n, H].
  auto attend = [&](int64_t i, const at::Tensor& q, int64_t bi, int64_t col, const at::Tensor& out) {
    if (attend_in_place(i, q, bi, col, out)) return;
    const at::Tensor seq = qkv.narrow(0, bi * T, T), k = seq.narrow(1, H, H), v = seq.narrow(1, 2 * H, H);
    layer::attend(c, L[i], q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), query_bias(mask_bias, bi, col, q.size(0)),
                  false, out);
  };

  // Attention of every row of sequence bi: in place where oneDNN is called directly (fp32), else its queries, keys
  // and values head-major in one copy ([3, nh, T, dh], contiguous), which the GEMMs take as they are (else ATen's
  // oneDNN calls copy each of the three).
  const int64_t nh = c.num_attention_heads, dh = c.head_dim();
  auto attend_all = [&](int64_t i, int64_t bi) {
    if (attend_in_place(i, qkv.narrow(0, bi * T, T).narrow(1, 0, H), bi, 0, ctx.narrow(0, bi * T, T))) return;
    const at::Tensor hm = qkv.narrow(0, bi * T, T).view({T, 3, nh, dh}).permute({1, 2, 0, 3}).contiguous();
    const at::Tensor h = layer::attend_heads(c, L[i], hm[0].unsqueeze(0), hm[1].unsqueeze(0), hm[2].unsqueeze(0),
                                             mask_bias.narrow(0, bi, 1), false);  // [1, nh, T, dh]
    ctx.narrow(0, bi * T, T).view({T, nh, dh}).copy_(h[0].transpose(0, 1));
  };

  TaskPool& pool = TaskPool::get();
  pool.run(threads, chunks, [&](int64_t ch) { project(0, ch); });
  for (int64_t i = 0; i < full; ++i) {
    pool.run(threads, B, [&](int64_t bi) { attend_all(i, bi); });
    // The layer's output rows, then (same rows, still in cache) the next layer's projections.
    pool.run(threads, chunks, [&](int64_t ch) {
      xs[ch] = layer::finish(c, L[i], ctx.narrow(0, ch * per, xs[ch].size(0)), xs[ch], false);
      if (i + 1 < nl) project(i + 1, ch);
    });
  }
  x = chunks == 1 ? xs[0] : at::cat(xs, 0);
  if (!select) return m.final_norm(x).view({B, T, H});

  // The last layer at the selected rows only.
  const LayerOperands& w = L[nl - 1];
  const int64_t M = positions.size(0);
  const at::Tensor seq = positions.select(1, 0), col = positions.select(1, 1);
  const at::Tensor x_at = x.index_select(0, seq * T + col);  // [M, H]
  const at::Tensor qs = layer::project(w, layer::input_norm(c, w, x_at), 0, 1);
  at::Tensor cs = at::empty({M, H}, gemm_opts);
  const auto pos = positions.accessor<int64_t, 2>();
  pool.run(threads, M,
           [&](int64_t r) { attend(nl - 1, qs.narrow(0, r, 1), pos[r][0], pos[r][1], cs.narrow(0, r, 1)); });
  at::Tensor out = at::empty({M, H}, x.options());
  const int64_t mper = chunking(M);
  pool.run(threads, (M + mper - 1) / mper, [&](int64_t ch) {
    const int64_t r0 = ch * mper, n = std::min(mper, M - r0);
    out.narrow(0, r0, n).copy_(m.final_norm(layer::finish(c, w, cs.narrow(0, r0, n), x_at.narrow(0, r0, n), false)));
  });
  return out;
}

// Runs f with the task path's thread settings where that path is on (ops single-threaded
// in the caller, OpenBLAS single-threaded), so that no OpenMP or OpenBLAS worker woken by the small ops around
// the model (normalisers, gathers) is left spinning on a core against the pool's next job.
void in_inference_scope(const BertModel& m, const std::function<void()>& f) {
  const int threads = inference_tasks(m, false);
  if (!threads) return f();
  struct ScopeThreads {
    int prev = t_scope_threads;
    explicit ScopeThreads(int n) { t_scope_threads = n; }
    ~ScopeThreads() { t_scope_threads = prev; }
  } scope(threads);
  SerialOpsGuard serial_ops;
  SerialBlasGuard serial_blas(threads > 1);
  f();
}

// The last hidden states at validated (row, column) positions [M, 2] -> [M, H],
// without autograd. The task path runs the last layer for those rows only; elsewhere, gather from encode().
at::Tensor encode_at_positions(const BertModel& m, const Batch& b, const at::Tensor& positions, Precision precision) {
  if (const int threads = inference_tasks(m, false))
    return encode_in_tasks(m, b, nullptr, threads, positions, precision);
  const at::Tensor hidden = m.encode(b, false, nullptr, false, precision);
  return hidden.index({positions.select(1, 0), positions.select(1, 1)});
}

}  // namespace petcore
