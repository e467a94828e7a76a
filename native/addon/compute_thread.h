// Every native job of one model runs on one thread of that model's own, not on whichever libuv worker took it.
// glibc's malloc gives each allocating thread an arena and each arena keeps its peak: training steps spread over
// libuv's four workers held up to four copies of a step's peak memory (MLM pretraining on 1,000 texts: 3.6 GB
// peak RSS, 1.7 GB on one thread, same speed). Per-thread settings (OpenMP's thread count) live there too.
#pragma once
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace petaddon {

class ComputeThread {
 public:
  // threads > 0: the ATen/OpenMP thread count of the compute thread (0: LibTorch's default).
  explicit ComputeThread(int threads);
  ~ComputeThread();
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

  // Runs f on the compute thread and waits for it; rethrows what f threw. Callers take turns.
  void Run(const std::function<void()>& f);

 private:
  void Loop(int threads);

  std::mutex call_mu_;  // one Run at a time
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* task_ = nullptr;
  bool finished_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace petaddon
