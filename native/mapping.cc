// Memory mappings exposed as ArrayBuffers: mapped files, and the anonymous memory eager
// reads fill (allocate).
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

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <v8.h>

#include "args.h"
#include "huge_pages.h"

namespace tensorio {
namespace {

struct Mapping {
  void* address;
  size_t length;
  bool writable;
  bool unmapped;
};

// Live mappings by base address. Finalizers and unmap() run on a JS thread, but worker
// threads each have their own, so the table is shared and locked.
std::mutex registry_mutex;
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

// Runs on the JS thread once the buffer object has been collected (an earlier unmap() has
// already released the pages; then only the bookkeeping goes).
void Finalize(napi_env, void* data, void*) {
  auto* mapping = static_cast<Mapping*>(data);
  Release(mapping);
  delete mapping;
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

// The buffer is made by V8 directly, over a backing store with V8's empty deleter, for two
// reasons. (1) V8 counts the bytes of every other backing store as memory the young
// generation holds, and the next ArrayBuffer anyone allocates then forces a scavenge
// ("external memory pressure"): 284 scavenges in 300 warm opens of a 512 MiB file, 0.39 ms an
// open against NumPy's 0.09. A mapping is the page cache's memory, not the heap's, and a
// backing store with the empty deleter is not counted (BackingStore::PerIsolateAccountingLength).
// (2) N-API's external buffers are node::Buffers, limited to buffer.constants.MAX_LENGTH
// (4 GiB on Node 20), and a mapping may be larger. The pages are released by an N-API
// finalizer on the buffer object instead of by the backing store. That is safe only while no
// other ArrayBuffer shares the backing store, so the TypeScript layer marks every mapped
// buffer untransferable (worker_threads.markAsUntransferable): postMessage then copies it.
napi_value NewMappedArrayBuffer(napi_env env, Mapping* mapping) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::unique_ptr<v8::BackingStore> store =
      v8::ArrayBuffer::NewBackingStore(mapping->address, mapping->length, v8::BackingStore::EmptyDeleter, nullptr);
  v8::Local<v8::Value> buffer = v8::ArrayBuffer::New(isolate, std::move(store));
  // N-API's own conversion (v8impl::JsValueFromV8LocalValue) is this cast.
  napi_value result = reinterpret_cast<napi_value>(*buffer);
  if (napi_add_finalizer(env, result, mapping, Finalize, nullptr, nullptr) != napi_ok) return nullptr;
  return result;
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

  // Electron's V8 sandbox aborts on memory it did not allocate: ask N-API first, which
  // reports the refusal; the TypeScript layer reads the file instead when it sees this code.
  if (!ExternalMemoryAllowed(env)) {
    munmap(address, length);
    Napi::Error error = Napi::Error::New(env, "the JavaScript engine refused external (mapped) memory");
    error.Set("code", Napi::String::New(env, "ERR_EXTERNAL_MEMORY_REFUSED"));
    throw error;
  }
  auto* mapping = new Mapping{address, static_cast<size_t>(length), writable, false};
  napi_value result = NewMappedArrayBuffer(env, mapping);
  if (result == nullptr) {
    munmap(address, length);
    delete mapping;
    throw Napi::Error::New(env, "could not attach a finalizer to the mapped buffer");
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

// ---- read buffers --------------------------------------------------------------------
//
// allocate(length) -> a zero-filled ArrayBuffer for an eager read, in anonymous memory of our
// own, so the addon knows how much of it is still held. Why: a process that reads a 512 MiB
// file again and again, dropping each result, held three buffers at once with
// `new ArrayBuffer` (1,587 MiB peak over 30 synchronous reads, 1,232 async). V8 sees the
// bytes (a backing store with a deleter counts as external memory) and starts incremental
// marking under that pressure, but a synchronous loop allocates almost nothing on the JS
// heap, so the marking finishes only at a stack-guard interrupt 150-1,500 ms later, and the
// dead buffers' memory is freed by the ArrayBuffer sweeper after that, on another thread.
// NumPy frees each array the moment its last reference goes. Here, when the buffers handed
// out and not yet freed would pass a limit, the allocation first asks V8 for a full
// collection (MemoryPressureNotification kCritical, which also waits for the ArrayBuffer
// sweeper, Heap::EagerlyFreeExternalMemory), so a dropped buffer is gone before the next one
// is made. The limit then becomes what survived plus the larger of 64 MiB, this length and
// half of what survived, so a process that keeps what it reads pays for O(log n)
// collections, not one per read. A collection costs in proportion to the live JS heap, so
// none is forced when the heap is larger than the buffers that could be freed.

struct ReadBudget {
  // Bytes of this isolate's read buffers not yet freed. Deleters run on whichever thread frees
  // the backing store (the sweeper's, or the main one), hence atomic.
  std::atomic<uint64_t> outstanding{0};
  // Touched on the isolate's thread only.
  uint64_t limit = 0;
};

// One budget per JS thread (each worker has its own isolate). Never freed: a deleter may run
// after its environment is gone.
thread_local ReadBudget* read_budget = nullptr;

constexpr uint64_t kMinBudgetStep = 64ull << 20;
constexpr uint64_t kHugePage = 2ull << 20;

struct ReadBuffer {
  ReadBudget* budget;
  void* base;  // the mapping, which may start below the data (huge-page alignment)
  size_t mapped;
  size_t length;
};

void FreeReadBuffer(void*, size_t, void* data) {
  auto* buffer = static_cast<ReadBuffer*>(data);
  munmap(buffer->base, buffer->mapped);
  NoteFreedReadBuffer(buffer->length);
  buffer->budget->outstanding.fetch_sub(buffer->length, std::memory_order_relaxed);
  delete buffer;
}

void CollectIfOverBudget(v8::Isolate* isolate, ReadBudget* budget, uint64_t length) {
  uint64_t held = budget->outstanding.load(std::memory_order_relaxed);
  if (held + length <= budget->limit) return;
  v8::HeapStatistics heap;
  isolate->GetHeapStatistics(&heap);
  if (held >= kMinBudgetStep && heap.used_heap_size() < held) {
    isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kCritical);
    isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kNone);
    held = budget->outstanding.load(std::memory_order_relaxed);
  }
  budget->limit = held + std::max({kMinBudgetStep, length, held / 2});
}

Napi::Value Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireArgs(info, 1, "allocate(length)");
  uint64_t length = ArgSize(info, 0);
  if (length == 0) return Napi::ArrayBuffer::New(env, 0);
  if (!ExternalMemoryAllowed(env)) return Napi::ArrayBuffer::New(env, static_cast<size_t>(length));
  if (read_budget == nullptr) read_budget = new ReadBudget();
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  CollectIfOverBudget(isolate, read_budget, length);

  // Large buffers start on a 2 MiB boundary, so transparent huge pages can back all of them
  // (one fault per 2 MiB instead of per 4 KiB while the read fills them), when they pay here
  // (huge_pages.h: not in a fresh process on a VM whose host takes back free pages).
  size_t align = length >= 2 * kHugePage && HugePagesPayFor(length) ? kHugePage : 0;
  if (length > SIZE_MAX - align) ThrowRange(env, "allocation length too large");
  size_t mapped = static_cast<size_t>(length) + align;
  void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    Napi::Error error = Napi::RangeError::New(env, "could not allocate " + std::to_string(length) + " bytes");
    error.Set("code", Napi::String::New(env, "ENOMEM"));
    throw error;
  }
  uint8_t* data = static_cast<uint8_t*>(base);
  if (align) {
    // Give back the unaligned head and the tail beyond the data.
    uintptr_t start = (reinterpret_cast<uintptr_t>(base) + kHugePage - 1) & ~(kHugePage - 1);
    size_t head = start - reinterpret_cast<uintptr_t>(base);
    if (head) munmap(base, head);
    size_t tail = mapped - head - static_cast<size_t>(length);
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t keep = (static_cast<size_t>(length) + page - 1) & ~(page - 1);
    if (tail > keep - static_cast<size_t>(length)) {
      size_t drop = tail - (keep - static_cast<size_t>(length));
      munmap(reinterpret_cast<uint8_t*>(start) + keep, drop);
    }
    base = reinterpret_cast<void*>(start);
    mapped = keep;
    data = static_cast<uint8_t*>(base);
    madvise(base, mapped & ~(kHugePage - 1), MADV_HUGEPAGE);
  }
  auto* buffer = new ReadBuffer{read_budget, base, mapped, static_cast<size_t>(length)};
  read_budget->outstanding.fetch_add(length, std::memory_order_relaxed);
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(data, static_cast<size_t>(length), FreeReadBuffer, buffer);
  v8::Local<v8::Value> result = v8::ArrayBuffer::New(isolate, std::move(store));
  return Napi::Value(env, reinterpret_cast<napi_value>(*result));
}

// readBuffersHeld() -> bytes of read buffers not yet freed, for leak tests and benches.
Napi::Value ReadBuffersHeld(const Napi::CallbackInfo& info) {
  uint64_t held = read_budget == nullptr ? 0 : read_budget->outstanding.load(std::memory_order_relaxed);
  return Napi::Number::New(info.Env(), static_cast<double>(held));
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
  exports.Set("allocate", Napi::Function::New(env, Allocate, "allocate"));
  exports.Set("readBuffersHeld", Napi::Function::New(env, ReadBuffersHeld, "readBuffersHeld"));
}

}  // namespace tensorio
