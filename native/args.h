// Argument checks shared by every entry point. The binding can be called directly from
// JavaScript, so each function validates what it is given and throws TypeError/RangeError
// instead of trusting the TypeScript layer.
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "span.h"

namespace tensorio {

inline void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

inline void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

inline void RequireArgs(const Napi::CallbackInfo& info, size_t count, const char* signature) {
  if (info.Length() < count) ThrowType(info.Env(), std::string("expected ") + signature);
}

// A file descriptor: a non-negative int32.
inline int ArgFd(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be a file descriptor");
  double fd = value.As<Napi::Number>().DoubleValue();
  if (!(fd >= 0 && fd <= INT32_MAX) || fd != static_cast<double>(static_cast<int>(fd))) {
    ThrowRange(info.Env(), "argument " + std::to_string(index) + " is not a valid file descriptor");
  }
  return static_cast<int>(fd);
}

// A byte count or file position: a non-negative safe integer (below 2^53).
inline uint64_t ArgSize(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be a number");
  double n = value.As<Napi::Number>().DoubleValue();
  if (!(n >= 0 && n <= 9007199254740991.0) || n != static_cast<double>(static_cast<uint64_t>(n))) {
    ThrowRange(info.Env(), "argument " + std::to_string(index) + " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(n);
}

inline bool ArgBool(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsBoolean()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

inline std::string ArgString(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsString()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

inline Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t index) {
  Napi::Value value = info[index];
  if (!value.IsFunction()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be a callback");
  return value.As<Napi::Function>();
}

// Raw bytes of an ArrayBuffer or any ArrayBufferView (TypedArray, DataView, Buffer).
inline ByteSpan BytesOf(Napi::Env env, Napi::Value value, const std::string& what) {
  ByteSpan span;
  if (value.IsArrayBuffer()) {
    Napi::ArrayBuffer buffer = value.As<Napi::ArrayBuffer>();
    span.data = static_cast<uint8_t*>(buffer.Data());
    span.length = buffer.ByteLength();
  } else if (value.IsTypedArray()) {
    // The data pointer comes from napi_get_typedarray_info itself, not from the view's
    // ArrayBuffer(): for a view of a SharedArrayBuffer (worker_threads), that buffer is a
    // SharedArrayBuffer, which napi_get_arraybuffer_info (ArrayBuffer::Data) refuses with
    // napi_invalid_arg, so writing such an array failed with "Invalid argument".
    Napi::TypedArray view = value.As<Napi::TypedArray>();
    void* data = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, nullptr, nullptr, &data, nullptr, nullptr), span);
    span.data = static_cast<uint8_t*>(data);
    span.length = view.ByteLength();
  } else if (value.IsDataView()) {
    size_t length = 0;
    void* data = nullptr;
    NAPI_THROW_IF_FAILED(env, napi_get_dataview_info(env, value, &length, &data, nullptr, nullptr), span);
    span.data = static_cast<uint8_t*>(data);
    span.length = length;
  } else {
    ThrowType(env, what + " must be an ArrayBuffer or a TypedArray");
  }
  return span;
}

inline ByteSpan ArgBytes(const Napi::CallbackInfo& info, size_t index) {
  return BytesOf(info.Env(), info[index], "argument " + std::to_string(index));
}

// An Error shaped like Node's own system errors (code, errno, syscall), so the TypeScript
// layer maps native and fs failures through the same path.
inline Napi::Error SystemError(Napi::Env env, int err, const char* syscall) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + ": " + std::strerror(err));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  const char* code = "EIO";
  switch (err) {
    case ENOENT: code = "ENOENT"; break;
    case EACCES: code = "EACCES"; break;
    case EPERM: code = "EPERM"; break;
    case ENOSPC: code = "ENOSPC"; break;
    case EDQUOT: code = "EDQUOT"; break;
    case EROFS: code = "EROFS"; break;
    case EISDIR: code = "EISDIR"; break;
    case EINVAL: code = "EINVAL"; break;
    case ENOMEM: code = "ENOMEM"; break;
    case ENODEV: code = "ENODEV"; break;
    case EBADF: code = "EBADF"; break;
    case EFBIG: code = "EFBIG"; break;
    case EMFILE: code = "EMFILE"; break;
    case EOVERFLOW: code = "EOVERFLOW"; break;
    default: break;
  }
  error.Set("code", Napi::String::New(env, code));
  return error;
}

}  // namespace tensorio
