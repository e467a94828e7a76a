#include "model/prompt_encoder.h"

#include <stdexcept>

namespace petcore {

PromptEncoderImpl::PromptEncoderImpl(const std::string& kind_, int64_t tokens, int64_t hidden) : kind(kind_) {
  if (kind != "lstm" && kind != "mlp")
    throw std::runtime_error("prompt encoder must be 'lstm' or 'mlp', got '" + kind + "'");
  embedding = register_module("embedding", torch::nn::Embedding(tokens, hidden));
  int64_t in = hidden;
  if (kind == "lstm") {
    lstm = register_module(
        "lstm",
        torch::nn::LSTM(torch::nn::LSTMOptions(hidden, hidden).num_layers(2).bidirectional(true).batch_first(true)));
    in = 2 * hidden;
  }
  mlp1 = register_module("mlp1", torch::nn::Linear(in, hidden));
  mlp2 = register_module("mlp2", torch::nn::Linear(hidden, hidden));
}

torch::Tensor PromptEncoderImpl::forward() {
  torch::Tensor x = embedding->weight.unsqueeze(0);  // [1, n, h]
  if (lstm) x = std::get<0>(lstm->forward(x));       // [1, n, 2h]
  return mlp2->forward(torch::relu(mlp1->forward(x))).squeeze(0);
}

}  // namespace petcore
