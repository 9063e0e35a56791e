// Memory mappings exposed as ArrayBuffers.
//
// One mapping is exactly one ArrayBuffer: V8 aborts the process when two ArrayBuffers wrap
// the same or overlapping memory, so tensors are TypedArray views into this one buffer.
// The mapping is released by the buffer's finalizer when the last view is collected, or at
// once by unmap(), which detaches the buffer (every view then reads as empty, so no stale
// pointer into unmapped memory survives) before calling munmap.
#include "mapping.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include <v8.h>

#include "args.h"

namespace tensorio {
namespace {

struct Mapping {
  void* address;
  size_t length;
  bool writable;
  bool unmapped;
  // Set while napi_create_external_arraybuffer runs: when Node refuses the buffer (over
  // buffer.constants.MAX_LENGTH, or a host without external memory) it calls the finalizer
  // itself before returning, and Map() must then be the only one to free the mapping.
  bool creating;
};

// Live mappings by base address. Finalizers and unmap() run on a JS thread, but worker
// threads each have their own, so the table is shared and locked.
std::mutex registry_mutex;

// V8 counts every ArrayBuffer's bytes as external memory and, past a limit, collects garbage
// synchronously inside ArrayBuffer creation: mapping a 512 MiB file cost a 2-3 ms full GC, so
// a mapped open grew with the file's size. A mapping is not allocated memory (its pages are
// the page cache's), so Map() takes the mapping's length off the count before creating the
// buffer, and gives it back once V8 has let go of the buffer. Deleters may run on any thread,
// where N-API cannot be called, so they only note the bytes here and the next Map() settles
// them.
std::atomic<int64_t> uncounted_released_bytes{0};

void SettleReleasedBytes(napi_env env) {
  int64_t released = uncounted_released_bytes.exchange(0);
  int64_t unused;
  if (released != 0) napi_adjust_external_memory(env, released, &unused);
}
std::unordered_map<void*, Mapping*> registry;

// Unmaps once, and forgets the address at the same moment: after munmap the kernel may hand
// the same address to the next mapping, whose entry must not be erased by this one's late
// finalizer.
void Release(Mapping* mapping) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (mapping->unmapped) return;
  auto found = registry.find(mapping->address);
  if (found != registry.end() && found->second == mapping) registry.erase(found);
  munmap(mapping->address, mapping->length);
  mapping->unmapped = true;
}

// Runs once V8 has swept the buffer (and so stopped counting its bytes), so the bytes Map()
// took off the count go back now, balancing it; an earlier unmap() changes nothing here.
void Forget(Mapping* mapping) {
  Release(mapping);
  uncounted_released_bytes += static_cast<int64_t>(mapping->length);
  delete mapping;
}

void Finalize(Napi::Env, void*, Mapping* mapping) {
  if (mapping->creating) return;
  Forget(mapping);
}

Mapping* Lookup(const Napi::CallbackInfo& info, size_t index, Napi::ArrayBuffer* buffer_out) {
  Napi::Value value = info[index];
  if (!value.IsArrayBuffer()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be an ArrayBuffer");
  Napi::ArrayBuffer buffer = value.As<Napi::ArrayBuffer>();
  if (buffer_out) *buffer_out = buffer;
  void* data = buffer.Data();
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto found = registry.find(data);
  if (data == nullptr || found == registry.end() || found->second->unmapped) return nullptr;
  return found->second;
}

// Whether this host lets JavaScript see memory it did not allocate (Electron's V8 sandbox
// does not). Probed once with N-API, which reports the refusal instead of aborting.
bool ExternalMemoryAllowed(napi_env env) {
  static int allowed = -1;
  if (allowed < 0) {
    static char probe[1];
    napi_value ignored;
    allowed = napi_create_external_arraybuffer(env, probe, 1, nullptr, nullptr, &ignored) == napi_ok ? 1 : 0;
  }
  return allowed == 1;
}

// N-API wraps external memory in a node::Buffer, limited to buffer.constants.MAX_LENGTH
// (4 GiB on Node 20), but a V8 ArrayBuffer may be far larger. Mappings past that limit are
// handed to V8 directly, so a 5 GiB tensor is still one zero-copy view. V8 may run the
// deleter on any thread; Release() is locked for that reason.
napi_value NewLargeArrayBuffer(Mapping* mapping) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      mapping->address, mapping->length,
      [](void*, size_t, void* hint) {
        Forget(static_cast<Mapping*>(hint));
      },
      mapping);
  v8::Local<v8::Value> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  // N-API's own conversion (v8impl::JsValueFromV8LocalValue) is this cast.
  return reinterpret_cast<napi_value>(*buffer);
}

// map(fd, length, writable) -> ArrayBuffer over bytes [0, length) of the file.
// The caller has already compared length with the file's real size, so no access through
// the buffer can fault (unless another process truncates the file later; see docs).
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireArgs(info, 3, "map(fd, length, writable)");
  int fd = ArgFd(info, 0);
  uint64_t length = ArgSize(info, 1);
  bool writable = ArgBool(info, 2);

  struct stat st;
  if (fstat(fd, &st) != 0) throw SystemError(env, errno, "fstat");
  if (!S_ISREG(st.st_mode)) throw SystemError(env, ENODEV, "mmap");
  if (length > static_cast<uint64_t>(st.st_size)) {
    ThrowRange(env, "mapping length " + std::to_string(length) + " exceeds the file size " + std::to_string(st.st_size));
  }
  // mmap refuses zero-length mappings; an empty file is an empty buffer.
  if (length == 0) return Napi::ArrayBuffer::New(env, 0);

  int protection = PROT_READ | (writable ? PROT_WRITE : 0);
  void* address = mmap(nullptr, length, protection, MAP_SHARED, fd, 0);
  if (address == MAP_FAILED) throw SystemError(env, errno, "mmap");

  auto* mapping = new Mapping{address, static_cast<size_t>(length), writable, false, true};
  SettleReleasedBytes(env);
  int64_t unused;
  napi_adjust_external_memory(env, -static_cast<int64_t>(length), &unused);
  napi_value result;
  napi_status status = napi_create_external_arraybuffer(
      env, address, length,
      [](napi_env e, void* /*data*/, void* hint) { Finalize(Napi::Env(e), nullptr, static_cast<Mapping*>(hint)); },
      mapping, &result);
  std::string refusal;
  if (status != napi_ok) {
    // Node may have raised its own exception; take it, so the message can be passed on.
    bool pending_exception = false;
    napi_is_exception_pending(env, &pending_exception);
    if (pending_exception) {
      napi_value pending;
      napi_get_and_clear_last_exception(env, &pending);
      Napi::Value message = Napi::Value(env, pending).ToObject().Get("message");
      if (message.IsString()) refusal = message.As<Napi::String>().Utf8Value();
    }
    // A host that allows external memory refused only the size (buffer.constants.MAX_LENGTH).
    if (ExternalMemoryAllowed(env)) {
      result = NewLargeArrayBuffer(mapping);
      status = napi_ok;
    }
  }
  mapping->creating = false;
  if (status != napi_ok) {
    munmap(address, length);
    delete mapping;
    napi_adjust_external_memory(env, static_cast<int64_t>(length), &unused);
    // Electron's V8 sandbox refuses external memory: the TypeScript layer reads the file
    // instead when it sees this code.
    std::string reason = "the JavaScript engine refused external (mapped) memory";
    if (!refusal.empty()) reason += ": " + refusal;
    Napi::Error error = Napi::Error::New(env, reason);
    error.Set("code", Napi::String::New(env, "ERR_EXTERNAL_MEMORY_REFUSED"));
    throw error;
  }
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry[address] = mapping;
  }
  return Napi::Value(env, result);
}

// unmap(buffer) -> boolean: releases a mapping now. Returns false when the buffer is not a
// live mapping (already released, or an ordinary ArrayBuffer).
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "unmap(buffer)");
  Napi::ArrayBuffer buffer;
  Mapping* mapping = Lookup(info, 0, &buffer);
  if (mapping == nullptr) return Napi::Boolean::New(info.Env(), false);
  // Unmap, then detach before any JavaScript runs again, so no view can reach the memory.
  // In this order because V8 may run a large mapping's deleter (which frees `mapping`)
  // inside Detach itself.
  Release(mapping);
  buffer.Detach();
  return Napi::Boolean::New(info.Env(), true);
}

// sync(buffer): msync a writable mapping to its file.
Napi::Value Sync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "sync(buffer)");
  Mapping* mapping = Lookup(info, 0, nullptr);
  if (mapping == nullptr) ThrowType(info.Env(), "sync() needs a live mapping");
  if (mapping->writable && msync(mapping->address, mapping->length, MS_SYNC) != 0) {
    throw SystemError(info.Env(), errno, "msync");
  }
  return info.Env().Undefined();
}

// isMapped(buffer) -> boolean
Napi::Value IsMapped(const Napi::CallbackInfo& info) {
  RequireArgs(info, 1, "isMapped(buffer)");
  if (!info[0].IsArrayBuffer()) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), Lookup(info, 0, nullptr) != nullptr);
}

// liveMappings() -> number, for leak tests.
Napi::Value LiveMappings(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return Napi::Number::New(info.Env(), static_cast<double>(registry.size()));
}

}  // namespace

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("unmap", Napi::Function::New(env, Unmap, "unmap"));
  exports.Set("sync", Napi::Function::New(env, Sync, "sync"));
  exports.Set("isMapped", Napi::Function::New(env, IsMapped, "isMapped"));
  exports.Set("liveMappings", Napi::Function::New(env, LiveMappings, "liveMappings"));
}

}  // namespace tensorio
