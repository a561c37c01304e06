// A fixed pool of worker threads; the calling thread works too. One job runs at a time
// (the model serialises its calls), and tasks are handed out through an atomic counter.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace difflm {

class ThreadPool {
 public:
  // `threads` >= 1 counts the caller, so `threads - 1` workers are started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task) for task in [0, n_tasks), spread over the pool; returns when all are done.
  // The first exception thrown by a task is rethrown here.
  void run(int64_t n_tasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into about `threads * 4` chunks of at least `grain` items: fn(begin, end).
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop();
  void work_on(const std::function<void(int64_t)>* job, int64_t n_tasks);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  // Written under mutex_; atomic so that idle workers and a waiting caller can spin on them
  // briefly before sleeping (a decode step runs hundreds of short jobs, and a futex wake-up
  // costs more than most of them).
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};

  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::exception_ptr error_;
};

}  // namespace difflm
