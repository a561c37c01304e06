// A minimal test harness for the engine's C++ tests: TEST registers a case, CHECK records a
// failure with file and line and goes on, REQUIRE stops the case. main() ends with the line
// "N passed, M failed".
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace difflm_test {

struct Case {
  const char* name;
  std::function<void()> fn;
};
std::vector<Case>& registry();
void fail(const char* file, int line, const std::string& what);
struct Register {
  Register(const char* name, std::function<void()> fn) { registry().push_back({name, fn}); }
};
struct Stop {};

// Relative L2 error ||a - b|| / ||b|| (NaN in either never passes: returns +inf).
double rel_l2(const float* a, const float* b, size_t n);
double rel_l2(const std::vector<float>& a, const std::vector<float>& b);
std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.f);

}  // namespace difflm_test

#define DIFFLM_CAT2(a, b) a##b
#define DIFFLM_CAT(a, b) DIFFLM_CAT2(a, b)
#define TEST(name)                                                                             \
  static void DIFFLM_CAT(test_fn_, name)();                                                    \
  static difflm_test::Register DIFFLM_CAT(test_reg_, name)(#name, DIFFLM_CAT(test_fn_, name)); \
  static void DIFFLM_CAT(test_fn_, name)()

#define CHECK(cond)                                            \
  do {                                                         \
    if (!(cond)) difflm_test::fail(__FILE__, __LINE__, #cond); \
  } while (0)
#define CHECK_MSG(cond, msg)                            \
  do {                                                  \
    if (!(cond)) {                                      \
      std::ostringstream os_;                           \
      os_ << #cond << ": " << msg;                      \
      difflm_test::fail(__FILE__, __LINE__, os_.str()); \
    }                                                   \
  } while (0)
#define REQUIRE(cond)                               \
  do {                                              \
    if (!(cond)) {                                  \
      difflm_test::fail(__FILE__, __LINE__, #cond); \
      throw difflm_test::Stop{};                    \
    }                                               \
  } while (0)
// Runs `stmt`, expecting an EngineError whose code is `code` and whose message contains `text`.
#define CHECK_THROWS(stmt, want_code, want_text)                                    \
  do {                                                                              \
    bool thrown_ = false;                                                           \
    try {                                                                           \
      stmt;                                                                         \
    } catch (const difflm::EngineError& e_) {                                       \
      thrown_ = true;                                                               \
      CHECK_MSG(e_.code() == (want_code), "wrong code, message: " << e_.what());    \
      CHECK_MSG(std::string(e_.what()).find(want_text) != std::string::npos,        \
                "message \"" << e_.what() << "\" lacks \"" << (want_text) << "\""); \
    }                                                                               \
    CHECK_MSG(thrown_, "expected an EngineError from " #stmt);                      \
  } while (0)
