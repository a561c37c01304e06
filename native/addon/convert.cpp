#include "convert.h"

namespace difflm_addon {

namespace {

Napi::Value get(const Napi::Object& o, const char* key, bool (Napi::Value::*is)() const,
                const char* type) {
  Napi::Value v = o.Get(key);
  if (!(v.*is)())
    throw Napi::TypeError::New(o.Env(), std::string("expected ") + type + " for \"" + key + "\"");
  return v;
}

}  // namespace

double get_number(const Napi::Object& o, const char* key) {
  return get(o, key, &Napi::Value::IsNumber, "a number").As<Napi::Number>().DoubleValue();
}

int64_t get_int(const Napi::Object& o, const char* key) {
  const double d = get_number(o, key);
  if (d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::TypeError::New(o.Env(), std::string("expected an integer for \"") + key + "\"");
  return static_cast<int64_t>(d);
}

bool get_bool(const Napi::Object& o, const char* key) {
  return get(o, key, &Napi::Value::IsBoolean, "a boolean").As<Napi::Boolean>().Value();
}

std::string get_string(const Napi::Object& o, const char* key) {
  return get(o, key, &Napi::Value::IsString, "a string").As<Napi::String>().Utf8Value();
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace difflm_addon
