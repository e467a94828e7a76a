// TypedArray <-> tensor conversions with shape and type checks. Inputs are copied on the main thread, so a
// job never reads JS memory from a worker thread.
#pragma once
#include <string>

#include <ATen/ATen.h>
#include <napi.h>

#include "model/bert_model.h"
#include "train/trainer.h"

namespace petaddon {

// Int32Array of length rows*cols -> int64 [rows, cols] (cols = 0: a 1-D tensor). Throws a TypeError naming `what`.
at::Tensor IntTensor(const Napi::Value& v, const std::string& what, int64_t rows, int64_t cols);
// Optional variant: undefined/null -> undefined tensor.
// Float32Array of length rows*cols -> float [rows, cols].
at::Tensor FloatTensor(const Napi::Value& v, const std::string& what, int64_t rows, int64_t cols);
at::Tensor OptionalIntTensor(const Napi::Value& v, const std::string& what, int64_t rows, int64_t cols);

// { inputIds, tokenTypeIds?, attentionMask?, batchSize, seqLen }
struct BatchTensors {
  at::Tensor input_ids, token_type_ids, attention_mask, position_ids, branch_ids;
};
BatchTensors BatchFromJs(const Napi::Value& v);

// (row, column) pairs: Int32Array of even length -> [M, 2].
at::Tensor PositionsFromJs(const Napi::Value& v, const std::string& what);
// candidates (Int32Array) + numCandidates -> [C] when shared, [M, C] when one list per position.
at::Tensor CandidatesFromJs(const Napi::Value& v, const Napi::Value& count, int64_t positions, const std::string& what);

petcore::LossSpec LossFromJs(const Napi::Value& v);
petcore::TrainableSpec TrainableFromJs(const Napi::Value& v);
petcore::OptimConfig OptimFromJs(const Napi::Value& v);

// A float CPU tensor -> new Float32Array (one copy).
Napi::Float32Array ToFloat32Array(Napi::Env env, const at::Tensor& t);
Napi::Array ToStringArray(Napi::Env env, const std::vector<std::string>& v);

int64_t IntOption(const Napi::Object& o, const char* key, int64_t fallback, int64_t min_value);
double NumberOption(const Napi::Object& o, const char* key, double fallback);
// 'fp32' | 'bf16' (absent: fallback); anything else is a TypeError.
petcore::Precision PrecisionOption(const Napi::Object& o, const char* key, petcore::Precision fallback);
// 'onednn' | 'aten' -> whether the layer kernel calls oneDNN directly (absent: where this build can); anything else
// is a TypeError, and 'onednn' in a build without the direct calls an Error.
bool KernelsOption(const Napi::Object& o, const char* key);

}  // namespace petaddon
