#include "kernels/cpu_threads.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#endif

namespace petcore {
namespace {

// Per-thread / per-process thread knobs of the runtime libraries already loaded with LibTorch, found by name
// (the addon is loaded RTLD_LOCAL, so they are looked up in the loaded objects themselves).
struct RuntimeKnobs {
  void (*omp_set_num_threads)(int) = nullptr;  // libgomp / libomp: this thread's OpenMP team size
  int (*omp_get_max_threads)() = nullptr;
  void (*openblas_set_num_threads)(int) = nullptr;  // OpenBLAS (pthreads build): its own pool
  int (*openblas_get_num_threads)() = nullptr;
  int (*mkl_set_num_threads_local)(int) = nullptr;  // MKL: this thread's count (returns the previous one)

  static const RuntimeKnobs& get() {
    static const RuntimeKnobs k = find();
    return k;
  }

 private:
  static RuntimeKnobs find() {
    RuntimeKnobs k;
#if defined(__linux__)
    std::vector<std::string> libs;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          if (info->dlpi_name && *info->dlpi_name)
            static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
          return 0;
        },
        &libs);
    for (const auto& lib : libs) {
      const bool omp = lib.find("omp") != std::string::npos, blas = lib.find("openblas") != std::string::npos,
                 mkl = lib.find("mkl") != std::string::npos;
      if (!omp && !blas && !mkl) continue;
      void* h = dlopen(lib.c_str(), RTLD_LAZY | RTLD_NOLOAD);
      if (!h) continue;
      auto sym = [&](auto& fn, const char* name) {
        if (!fn) fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      };
      if (omp) {
        sym(k.omp_set_num_threads, "omp_set_num_threads");
        sym(k.omp_get_max_threads, "omp_get_max_threads");
      }
      if (blas) {
        sym(k.openblas_set_num_threads, "openblas_set_num_threads");
        sym(k.openblas_get_num_threads, "openblas_get_num_threads");
      }
      if (mkl) sym(k.mkl_set_num_threads_local, "mkl_set_num_threads_local");
      dlclose(h);  // RTLD_NOLOAD took a reference; the library stays loaded
    }
#endif  // elsewhere nothing is found and inference keeps the plain path
    if (!k.omp_set_num_threads || !k.omp_get_max_threads)
      k.omp_set_num_threads = nullptr, k.omp_get_max_threads = nullptr;
    if (!k.openblas_set_num_threads || !k.openblas_get_num_threads)
      k.openblas_set_num_threads = nullptr, k.openblas_get_num_threads = nullptr;
    return k;
  }
};

void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

bool can_serialize_ops() { return RuntimeKnobs::get().omp_set_num_threads != nullptr; }

SerialOpsGuard::SerialOpsGuard() {
  const auto& k = RuntimeKnobs::get();
  at::get_num_threads();  // ATen's lazy per-thread init first, so that it does not undo the setting below
  if (k.omp_set_num_threads) {
    omp_prev_ = k.omp_get_max_threads();
    k.omp_set_num_threads(1);
  }
  if (k.mkl_set_num_threads_local) mkl_prev_ = k.mkl_set_num_threads_local(1);
}

SerialOpsGuard::~SerialOpsGuard() {
  const auto& k = RuntimeKnobs::get();
  if (omp_prev_ > 0) k.omp_set_num_threads(omp_prev_);
  if (k.mkl_set_num_threads_local) k.mkl_set_num_threads_local(mkl_prev_);
}

SerialBlasGuard::SerialBlasGuard(bool active) {
  const auto& k = RuntimeKnobs::get();
  if (!active || !k.openblas_set_num_threads) return;
  prev_ = k.openblas_get_num_threads();
  if (prev_ > 1) k.openblas_set_num_threads(1);
}

SerialBlasGuard::~SerialBlasGuard() {
  const auto& k = RuntimeKnobs::get();
  if (prev_ > 1 && k.openblas_set_num_threads) k.openblas_set_num_threads(prev_);
}

TaskPool& TaskPool::get() {
  static TaskPool* pool = new TaskPool();  // never destroyed: helpers may still wait at exit
  return *pool;
}

void TaskPool::run(int participants, int64_t n, const std::function<void(int64_t)>& task) {
  std::unique_lock<std::mutex> job(job_mu_, std::try_to_lock);
  if (!job.owns_lock() || participants <= 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) task(i);
    return;
  }
  const int helpers = static_cast<int>(std::min<int64_t>(participants, n)) - 1;
  ensure_threads(helpers);
  {
    std::lock_guard<std::mutex> lk(mu_);
    task_ = &task;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    active_ = helpers;
    inference_ = c10::InferenceMode::is_enabled();
    pending_.store(helpers, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work();
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0 && spin < kSpins; ++spin) pause();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  task_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void TaskPool::ensure_threads(int helpers) {
  while (static_cast<int>(threads_.size()) < helpers) {
    const int index = static_cast<int>(threads_.size());
    const uint64_t start = generation_.load(std::memory_order_acquire);
    threads_.emplace_back([this, index, start] { loop(index, start); });
    threads_.back().detach();
  }
}

void TaskPool::loop(int index, uint64_t seen) {
  SerialOpsGuard serial;  // for the thread's lifetime
  for (;;) {
    for (int spin = 0; generation_.load(std::memory_order_acquire) == seen && spin < kSpins; ++spin) pause();
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (index >= active_) continue;
    work();
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      done_.notify_one();
    }
  }
}

void TaskPool::work() {
  c10::InferenceMode inference(inference_);
  at::NoGradGuard no_grad;
  for (int64_t i; (i = next_.fetch_add(1)) < n_;) {
    try {
      (*task_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(n_);
    }
  }
}

}  // namespace petcore
