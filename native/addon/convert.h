// Reading JS values into engine structs (on the JS thread, before any work is queued) and
// turning engine errors into JS errors with a `code`.
#pragma once

#include <napi.h>

#include <string>

#include "errors.h"

namespace difflm_addon {

// Throws Napi::TypeError naming `key` when the property is missing or of the wrong type.
double get_number(const Napi::Object& o, const char* key);
int64_t get_int(const Napi::Object& o, const char* key);
bool get_bool(const Napi::Object& o, const char* key);
std::string get_string(const Napi::Object& o, const char* key);

// A JS Error with `code` set (DIFFLM_*).
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

// Runs fn, storing an EngineError's code and message (or a generic one) for OnError.
struct CaughtError {
  std::string code, message;
  bool set = false;
};
template <class F>
void capture_errors(CaughtError& out, F&& fn) {
  try {
    fn();
  } catch (const difflm::EngineError& e) {
    out = {difflm::error_code_name(e.code()), e.what(), true};
  } catch (const std::bad_alloc&) {
    out = {"DIFFLM_OUT_OF_MEMORY", "out of memory", true};
  } catch (const std::exception& e) {
    out = {"DIFFLM_INTERNAL", e.what(), true};
  }
}

}  // namespace difflm_addon
