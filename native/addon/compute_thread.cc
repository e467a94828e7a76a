#include "compute_thread.h"

#include <ATen/Parallel.h>

namespace petaddon {

ComputeThread::ComputeThread(int threads) : thread_([this, threads] { Loop(threads); }) {}

ComputeThread::~ComputeThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  // The last owner is normally the main thread; never join from the thread itself.
  if (thread_.get_id() == std::this_thread::get_id()) thread_.detach();
  else thread_.join();
}

void ComputeThread::Run(const std::function<void()>& f) {
  std::lock_guard<std::mutex> call(call_mu_);
  std::unique_lock<std::mutex> lock(mu_);
  task_ = &f;
  finished_ = false;
  error_ = nullptr;
  cv_.notify_all();
  cv_.wait(lock, [this] { return finished_; });
  task_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ComputeThread::Loop(int threads) {
  if (threads > 0) at::set_num_threads(threads);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || (task_ != nullptr && !finished_); });
    if (stop_) return;
    const std::function<void()>* task = task_;
    lock.unlock();
    std::exception_ptr error;
    try {
      (*task)();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    error_ = error;
    finished_ = true;
    cv_.notify_all();
  }
}

}  // namespace petaddon
