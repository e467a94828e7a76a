// Thread control for the CPU inference path: running ATen ops and OpenBLAS single-threaded in a thread, and a
// small persistent pool that hands out task indices. Kept apart from the model so the policy is in one place.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace petcore {

// True when the OpenMP runtime loaded with LibTorch was found (its thread knobs can be set per thread); without
// it, ops inside pool tasks would each start a full OpenMP team and oversubscribe the cores.
bool can_serialize_ops();

// While alive, ops in this thread run single-threaded: no OpenMP team, single-threaded MKL.
class SerialOpsGuard {
 public:
  SerialOpsGuard();
  ~SerialOpsGuard();
  SerialOpsGuard(const SerialOpsGuard&) = delete;
  SerialOpsGuard& operator=(const SerialOpsGuard&) = delete;

 private:
  int omp_prev_ = 0, mkl_prev_ = 0;
};

// OpenBLAS (pthreads build) runs each GEMM in the calling thread while alive. Its thread count is process-wide:
// a GEMM that another thread runs meanwhile (another model training) is single-threaded too, until restored.
class SerialBlasGuard {
 public:
  explicit SerialBlasGuard(bool active = true);
  ~SerialBlasGuard();
  SerialBlasGuard(const SerialBlasGuard&) = delete;
  SerialBlasGuard& operator=(const SerialBlasGuard&) = delete;

 private:
  int prev_ = 0;
};

// Persistent helper threads; run() hands out task indices [0, n) to the caller and `participants - 1`
// helpers and returns when all are done, rethrowing the first error. Between jobs a helper spins briefly
// (a forward pass starts jobs back to back) and then sleeps. One job at a time: a caller that finds the pool
// busy (another model's job on another thread) runs its tasks alone.
class TaskPool {
 public:
  static TaskPool& get();
  void run(int participants, int64_t n, const std::function<void(int64_t)>& task);

 private:
  static constexpr int kSpins = 20000;  // some tens of microseconds

  // Called before the job's generation is published: a new helper starts from the current one.
  void ensure_threads(int helpers);
  void loop(int index, uint64_t seen);
  void work();

  std::mutex job_mu_, mu_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  int active_ = 0;
  bool inference_ = false;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

}  // namespace petcore
