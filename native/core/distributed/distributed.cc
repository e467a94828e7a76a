#include "distributed/distributed.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <c10/util/Exception.h>
#include <torch/version.h>

// The c10d API used here (TCPStore(host, TCPStoreOptions), ProcessGroupGloo(store, rank, size, options),
// allreduce/barrier returning a Work with wait(timeout)) is the one of LibTorch 1.13 and 2.x; elsewhere, and without
// the Gloo headers (CMake defines PET_C10D_GLOO when it finds them), this file builds the stub.
#if defined(PET_C10D_GLOO) && ((TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR >= 13) || TORCH_VERSION_MAJOR == 2)
#define PET_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define PET_HAVE_C10D 0
#endif
// CUDA tensors go through NCCL when the LibTorch has it (CMake defines PET_C10D_NCCL for a CUDA LibTorch whose
// ProcessGroupNCCL.hpp and nccl.h it finds), as torch.distributed does with the backend "cpu:gloo,cuda:nccl".
#if PET_HAVE_C10D && defined(PET_C10D_NCCL)
#define PET_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define PET_HAVE_NCCL 0
#endif

namespace petcore {
namespace {

std::string message_of(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

std::string seconds(int64_t ms) {
  const double s = static_cast<double>(ms) / 1000.0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

}  // namespace

std::string tensors_fingerprint(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  // FNV-1a over 64-bit words: fast enough for a bert-base (0.4 GB) at start-up, and any flipped bit changes it.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](uint64_t w) { h = (h ^ w) * 1099511628211ULL; };
  auto mix_bytes = [&](const uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    mix(tail ^ (static_cast<uint64_t>(n - i) << 56));
  };
  for (const auto& [name, t] : tensors) {
    mix_bytes(reinterpret_cast<const uint8_t*>(name.data()), name.size());
    mix(static_cast<uint64_t>(t.scalar_type()));
    for (int64_t d : t.sizes()) mix(static_cast<uint64_t>(d));
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    mix_bytes(static_cast<const uint8_t*>(c.data_ptr()), c.numel() * c.element_size());
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

bool DistGroup::available() { return PET_HAVE_C10D != 0; }

std::string DistGroup::unavailable_reason() {
#if PET_HAVE_C10D
  return "";
#elif defined(PET_C10D_GLOO)
  return "this build of pet-mlm has no distributed training: LibTorch " TORCH_VERSION
         " is not a version whose c10d API it was written for (1.13 or 2.x)";
#else
  return "this build of pet-mlm has no distributed training: the c10d/Gloo headers were missing when it was compiled "
         "(Debian/Ubuntu: apt-get install libgloo-dev, then npm run build)";
#endif
}

#if PET_HAVE_C10D
namespace {

class C10dGroup : public DistGroup {
 public:
  explicit C10dGroup(const DistOptions& o) : DistGroup(o) {}

  void connect() {
    const auto timeout = std::chrono::milliseconds(opts_.timeout_ms);
    const std::string where = opts_.master_addr + ":" + std::to_string(opts_.master_port);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(opts_.master_port);
    so.isServer = opts_.rank == 0;
    so.numWorkers = static_cast<size_t>(opts_.world_size);
    so.waitWorkers = false;  // we wait for each rank ourselves, to say which one is missing
    so.timeout = timeout;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(opts_.master_addr, so);
    } catch (const std::exception& e) {
      if (opts_.rank == 0)
        throw std::runtime_error("rank 0 cannot serve the rendezvous on " + where +
                                 " (is MASTER_PORT in use?): " + message_of(e));
      throw std::runtime_error("rank " + std::to_string(opts_.rank) + " cannot reach rank 0's rendezvous at " + where +
                               " within " + seconds(opts_.timeout_ms) + ": " + message_of(e));
    }
    store_->setTimeout(timeout);
    // Every rank states the world size it was given; rank 0's is checked first, so that a rank started with the
    // wrong WORLD_SIZE says so at once instead of waiting for ranks that do not exist.
    const std::string mine = std::to_string(opts_.world_size);
    store_->set("pet/world/" + std::to_string(opts_.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    for (int r = 0; r < opts_.world_size; ++r) {
      if (r == opts_.rank) continue;
      std::string theirs;
      try {
        auto v = store_->get("pet/world/" + std::to_string(r));
        theirs.assign(v.begin(), v.end());
        // rank 0 serves the store: it stays until the others have read its world size (below)
        if (r == 0) store_->set("pet/world/read/" + std::to_string(opts_.rank), std::vector<uint8_t>{1});
      } catch (const std::exception& e) {
        throw std::runtime_error("rank " + std::to_string(r) + " did not join the rendezvous at " + where + " within " +
                                 seconds(opts_.timeout_ms) + " (WORLD_SIZE=" + mine + "; is every worker started?)");
      }
      if (theirs != mine) {
        if (opts_.rank == 0) {
          // Leaving now would close the store under a rank about to read rank 0's WORLD_SIZE, which would then
          // blame a missing rank 0: wait (briefly) until each has read it, so that every rank names the mismatch.
          for (int q = 1; q < opts_.world_size; ++q) {
            try {
              store_->wait({"pet/world/read/" + std::to_string(q)},
                           std::chrono::milliseconds(std::min<int64_t>(opts_.timeout_ms, 5000)));
            } catch (const std::exception&) {
            }
          }
        }
        throw std::runtime_error("the workers disagree on the world size: rank " + std::to_string(opts_.rank) +
                                 " has WORLD_SIZE=" + mine + ", rank " + std::to_string(r) + " has " + theirs);
      }
    }
    try {
      auto po = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME picks the interface as in PyTorch; a loopback master means a one-machine run.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      const bool loopback = opts_.master_addr.rfind("127.", 0) == 0 || opts_.master_addr == "localhost";
      if (ifname && *ifname) po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (loopback) po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else po->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo", store_);
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, opts_.rank, opts_.world_size, po);
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot connect the Gloo process group (rank " + std::to_string(opts_.rank) + " of " +
                               mine + "): " + message_of(e));
    }
  }

  void allreduce_sum(at::Tensor& t) override {
#if PET_HAVE_NCCL
    if (t.is_cuda()) {
      std::vector<at::Tensor> v{t};
      run("all-reduce (NCCL)", [&] { return nccl().allreduce(v); });
      return;
    }
#endif
    std::vector<at::Tensor> v{t.device().is_cpu() ? t : t.to(at::kCPU)};
    run("all-reduce", [&] { return pg_->allreduce(v); });
    if (!t.device().is_cpu()) t.copy_(v[0]);
  }

  void barrier() override {
    run("barrier", [&] { return pg_->barrier(); });
  }

  std::string backend(const at::Device& device) const override {
    return device.is_cuda() && PET_HAVE_NCCL ? "nccl" : "gloo";
  }

  void check_same(const std::string& what, const std::string& value) override {
    if (broken_) throw std::runtime_error("the process group failed earlier; no further collective is possible");
    const std::string prefix = "pet/check/" + std::to_string(checks_++) + "/";
    store_->set(prefix + std::to_string(opts_.rank), std::vector<uint8_t>(value.begin(), value.end()));
    std::string differing;
    for (int r = 0; r < opts_.world_size; ++r) {
      std::string theirs;
      try {
        auto v = store_->get(prefix + std::to_string(r));
        theirs.assign(v.begin(), v.end());
      } catch (const std::exception& e) {
        broken_ = true;
        throw std::runtime_error("rank " + std::to_string(r) + " did not reach the check of " + what + " within " +
                                 seconds(opts_.timeout_ms) + " (it died, or runs something else)");
      }
      if (theirs != value)
        differing += (differing.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + " has " + theirs;
    }
    if (!differing.empty())
      throw std::runtime_error(what + " differs across the workers: rank " + std::to_string(opts_.rank) + " has " +
                               value + ", " + differing);
  }

 private:
  template <typename F>
  void run(const char* what, F&& start) {
    if (broken_) throw std::runtime_error("the process group failed earlier; no further collective is possible");
    try {
      auto work = start();
      work->wait(std::chrono::milliseconds(opts_.timeout_ms));
    } catch (const std::exception& e) {
      broken_ = true;
      throw std::runtime_error(std::string("the ") + what + " across " + std::to_string(opts_.world_size) +
                               " workers failed (rank " + std::to_string(opts_.rank) +
                               "): another worker died or stalled past the timeout of " + seconds(opts_.timeout_ms) +
                               ": " + message_of(e));
    }
  }

#if PET_HAVE_NCCL
  // Made at the first CUDA all-reduce (every rank reaches it at the same step); NCCL picks the tensor's device.
  c10d::ProcessGroupNCCL& nccl() {
    if (!nccl_) {
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = std::chrono::milliseconds(opts_.timeout_ms);
      nccl_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store_),
                                                          opts_.rank, opts_.world_size, no);
    }
    return *nccl_;
  }
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl_;
#endif
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
  int64_t checks_ = 0;
};

}  // namespace
#endif

std::shared_ptr<DistGroup> DistGroup::create(const DistOptions& o) {
  if (o.world_size < 1) throw std::runtime_error("WORLD_SIZE must be >= 1, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size)
    throw std::runtime_error("RANK must be in [0, WORLD_SIZE - 1] = [0, " + std::to_string(o.world_size - 1) +
                             "], got " + std::to_string(o.rank));
  if (o.master_port < 1 || o.master_port > 65535)
    throw std::runtime_error("MASTER_PORT must be in [1, 65535], got " + std::to_string(o.master_port));
  if (o.timeout_ms <= 0) throw std::runtime_error("the distributed timeout must be > 0");
  if (o.master_addr.empty()) throw std::runtime_error("MASTER_ADDR is empty");
#if PET_HAVE_C10D
  auto g = std::make_shared<C10dGroup>(o);
  g->connect();
  return g;
#else
  throw std::runtime_error(unavailable_reason());
#endif
}

}  // namespace petcore
