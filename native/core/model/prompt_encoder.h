// P-tuning's prompt encoder: trainable inputs -> bidirectional LSTM (hidden = embedding size) -> MLP 2h -> h -> h,
// or an MLP h -> h -> h alone; its output replaces the input embeddings of the prompt's [unusedN] tokens.
#pragma once
#include <string>

#include <torch/torch.h>

namespace petcore {

struct PromptEncoderImpl : torch::nn::Module {
  PromptEncoderImpl(const std::string& kind, int64_t tokens, int64_t hidden);
  torch::Tensor forward();  // [tokens, hidden]

  std::string kind;
  torch::nn::Embedding embedding{nullptr};
  torch::nn::LSTM lstm{nullptr};
  torch::nn::Linear mlp1{nullptr}, mlp2{nullptr};
};
TORCH_MODULE(PromptEncoder);

}  // namespace petcore
