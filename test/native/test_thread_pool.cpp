#include <atomic>
#include <stdexcept>

#include "cpu/thread_pool.h"
#include "test.h"

using namespace difflm;

TEST(thread_pool_runs_every_task_once_and_propagates_errors) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 200; ++round) {
      std::vector<std::atomic<int>> hits(97);
      pool.run(97, [&](int64_t t) { hits[t].fetch_add(1); });
      for (auto& h : hits) CHECK(h.load() == 1);
    }
    bool caught = false;
    try {
      pool.run(50, [](int64_t t) {
        if (t == 13) throw std::runtime_error("task 13");
      });
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "task 13";
    }
    CHECK(caught);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(1000, 7, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) sum += i;
    });
    CHECK(sum.load() == 999 * 1000 / 2);
  }
}
