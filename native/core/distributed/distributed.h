// Data parallelism over PyTorch's own c10d: a TCPStore for the rendezvous and a process group (Gloo on CPU) for
// the collectives. No communication code of our own: this file only creates the group, checks that every rank
// agrees on what it is about to do, and turns c10d's failures (a dead peer, a timeout, a port in use) into
// messages that say what happened. Compiled to a stub that throws when the build had no c10d/Gloo headers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace petcore {

struct DistOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int64_t timeout_ms = 300000;  // rendezvous, every collective and every store wait
};

class DistGroup {
 public:
  // Whether this build has c10d with Gloo (the headers were found at build time), and why not.
  static bool available();
  static std::string unavailable_reason();
  // Rendezvous through a TCPStore at master_addr:master_port (rank 0 serves it), then the Gloo group. Throws
  // std::runtime_error with a clear message on a port in use, a rank that never arrives, or ranks that disagree on
  // the world size.
  static std::shared_ptr<DistGroup> create(const DistOptions& o);
  virtual ~DistGroup() = default;

  int rank() const { return opts_.rank; }
  int world_size() const { return opts_.world_size; }
  int64_t timeout_ms() const { return opts_.timeout_ms; }

  // In-place sum over the ranks of one tensor: CUDA tensors through NCCL when the build has it (else, as every
  // non-CPU tensor, through a CPU copy for Gloo). Blocks until done or the timeout; throws on a dead peer or a timeout.
  virtual void allreduce_sum(at::Tensor& t) = 0;
  virtual void barrier() = 0;
  // Which c10d backend reduces tensors on `device`: "gloo" or "nccl".
  virtual std::string backend(const at::Device& device) const = 0;
  // Every rank passes its own `value` for `what`; throws on every rank (naming the ranks) unless all are equal.
  // Calls must come in the same order on every rank.
  virtual void check_same(const std::string& what, const std::string& value) = 0;
  // Once a collective failed the group is unusable: later calls throw at once instead of waiting.
  bool broken() const { return broken_; }

 protected:
  explicit DistGroup(const DistOptions& o) : opts_(o) {}
  DistOptions opts_;
  bool broken_ = false;
};

// A fingerprint of a set of named tensors (names, shapes, dtypes and every byte): equal on two ranks iff they hold
// the same model, bit for bit.
std::string tensors_fingerprint(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace petcore
