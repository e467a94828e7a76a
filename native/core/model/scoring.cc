#include "model/scoring.h"

#include "kernels/autocast.h"
#include "kernels/cpu_inference.h"
#include "kernels/cpu_threads.h"

#include <stdexcept>
#include <string>

namespace petcore {

at::Tensor check_positions(const at::Tensor& positions, const Batch& b) {
  if (!positions.defined() || positions.dim() != 2 || positions.size(1) != 2 || positions.size(0) == 0)
    throw std::runtime_error("positions must be a non-empty list of (row, column) pairs");
  at::Tensor p = positions.to(b.input_ids.device(), at::kLong);
  const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
  at::Tensor rows = p.select(1, 0), cols = p.select(1, 1);
  if (rows.min().item<int64_t>() < 0 || rows.max().item<int64_t>() >= B)
    throw std::runtime_error("a position's row is outside the batch of " + std::to_string(B));
  if (cols.min().item<int64_t>() < 0 || cols.max().item<int64_t>() >= T)
    throw std::runtime_error("a position's column is outside the sequence length " + std::to_string(T));
  return p;
}

at::Tensor gather_positions(const at::Tensor& hidden, const at::Tensor& positions) {
  return hidden.index({positions.select(1, 0), positions.select(1, 1)});
}

CandidateScores candidate_scores_from_logits(const at::Tensor& vocab_logits, const at::Tensor& candidates) {
  const int64_t M = vocab_logits.size(0);
  at::Tensor index = candidates.dim() == 1 ? candidates.unsqueeze(0).expand({M, candidates.size(0)}) : candidates;
  CandidateScores s;
  const at::Tensor logits = vocab_logits.to(at::kFloat);  // the normaliser in fp32 even under autocast
  s.logits = logits.gather(1, index);
  s.log_z = at::logsumexp(logits, {1});
  return s;
}

namespace {

// The task path's scores: the candidates' logits from the fp32 decoder rows alone, the normaliser over vocabulary
// slices on the pool (log_normaliser_in_tasks) with the decoder in the kernels' precision (bf16: a copy kept with
// the model), so that the [M, V] logits are never formed; the labels then rest on fp32 candidate logits, as in
// fp32, and bf16 moves only the normaliser.
CandidateScores candidate_scores_in_tasks(const BertModel& m, const at::Tensor& hidden, const at::Tensor& candidates,
                                          int threads, Precision precision) {
  SerialBlasGuard serial_blas(threads > 1);
  const at::Tensor h = m.head_transform(hidden).to(at::kFloat).contiguous();  // [M, E]
  const auto [decoder, bias] = m.decoder_operands(Precision::Fp32);
  const int64_t M = h.size(0);
  CandidateScores s;
  if (candidates.dim() == 1) {
    s.logits = at::addmm(bias.index_select(0, candidates), h, decoder.index_select(0, candidates).t());
  } else {  // [M, C]: each position its own
    const at::Tensor flat = candidates.reshape({-1});
    const at::Tensor rows = decoder.index_select(0, flat).view({M, candidates.size(1), -1});  // [M, C, E]
    s.logits = at::bmm(rows, h.unsqueeze(2)).squeeze(2).add_(bias.index_select(0, flat).view({M, -1}));
  }
  const auto [dec, b] = m.decoder_operands(precision);
  s.log_z = log_normaliser_in_tasks(h, dec, b, threads, m.onednn_kernels());
  return s;
}

}  // namespace

at::Tensor check_candidates(const BertModel& m, const at::Tensor& candidates, int64_t M, const at::Device& device) {
  if (!candidates.defined() || candidates.numel() == 0) throw std::runtime_error("no candidate token ids given");
  at::Tensor c = candidates.to(device, at::kLong);
  if (c.dim() == 2 && c.size(0) != M)
    throw std::runtime_error("per-position candidates have " + std::to_string(c.size(0)) + " rows for " +
                             std::to_string(M) + " positions");
  if (c.dim() != 1 && c.dim() != 2) throw std::runtime_error("candidates must be [C] or [M, C]");
  const int64_t lo = c.min().item<int64_t>(), hi = c.max().item<int64_t>();
  if (lo < 0 || hi >= m.config().vocab_size)
    throw std::runtime_error("candidate token id " + std::to_string(lo < 0 ? lo : hi) +
                             " is outside the vocabulary (size " + std::to_string(m.config().vocab_size) + ")");
  return c;
}

at::Tensor logits_at(const BertModel& m, const Batch& b, const at::Tensor& positions, Precision precision) {
  c10::InferenceMode guard;
  CudaBf16Autocast autocast(precision == Precision::Bf16, m.device());
  const Precision kernel = kernel_precision(precision, m.device());
  at::Tensor p = check_positions(positions, b);
  at::Tensor logits;
  in_inference_scope(
      m, [&] { logits = m.mlm_logits(encode_at_positions(m, b, p, kernel)).to(at::kCPU, at::kFloat).contiguous(); });
  return logits;
}

CandidateScores score_candidates(const BertModel& m, const Batch& b, const at::Tensor& positions,
                                 const at::Tensor& candidates, Precision precision) {
  c10::InferenceMode guard;
  CudaBf16Autocast autocast(precision == Precision::Bf16, m.device());
  const Precision kernel = kernel_precision(precision, m.device());
  at::Tensor p = check_positions(positions, b);
  at::Tensor c = check_candidates(m, candidates, p.size(0), b.input_ids.device());
  CandidateScores s;
  in_inference_scope(m, [&] {
    const at::Tensor hidden = encode_at_positions(m, b, p, kernel);
    if (const int threads = inference_tasks(m, false)) {
      s = candidate_scores_in_tasks(m, hidden, c, threads, kernel);
      return;
    }
    // The MLM head (and on CPU the encoder's last layer) only at the positions; the normaliser in fp32.
    s = candidate_scores_from_logits(m.mlm_logits(hidden), c);
    s.logits = s.logits.to(at::kCPU).contiguous();
    s.log_z = s.log_z.to(at::kCPU).contiguous();
  });
  return s;
}

}  // namespace petcore
