// Positioned reads and writes on file descriptors, off the event loop.
//
// The TypeScript layer opens files, checks sizes and renames; this file only moves bytes
// between a descriptor and memory the caller already owns, so an eager read allocates its
// final buffer once and the kernel copies straight into it.
#include "file_io.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "args.h"
#include "io_core.h"

namespace tensorio {
namespace {

std::vector<ByteSpan> ArgChunks(const Napi::CallbackInfo& info, size_t index, Napi::Array* array_out) {
  if (!info[index].IsArray()) ThrowType(info.Env(), "argument " + std::to_string(index) + " must be an array of byte views");
  Napi::Array array = info[index].As<Napi::Array>();
  if (array_out) *array_out = array;
  std::vector<ByteSpan> chunks;
  chunks.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    ByteSpan span = BytesOf(info.Env(), array.Get(i), "chunk " + std::to_string(i));
    chunks.push_back(span);
  }
  return chunks;
}

// A positioned read or write on the thread pool. `run` does the I/O without touching N-API;
// the JS buffers it reads or writes are kept alive by a reference taken on the main thread.
class IoWorker : public Napi::AsyncWorker {
 public:
  IoWorker(Napi::Function callback, const char* name, Napi::Object keep, std::function<IoResult()> run)
      : Napi::AsyncWorker(callback, name), keep_(Napi::Persistent(keep)), run_(std::move(run)) {}

  void Execute() override {
    result_ = run_();
    if (result_.error != 0) SetError(result_.syscall);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Callback().Call({env.Null(), Napi::Number::New(env, static_cast<double>(result_.bytes)),
                     Napi::Number::New(env, static_cast<double>(result_.direct_bytes)), Napi::Boolean::New(env, result_.direct_refused)});
  }

  void OnError(const Napi::Error&) override {
    Callback().Call({SystemError(Env(), result_.error, result_.syscall).Value()});
  }

 private:
  Napi::ObjectReference keep_;
  std::function<IoResult()> run_;
  IoResult result_;
};

// Opens a file, checks it is not a folder, and reads its first bytes, in one trip to the
// thread pool: a mapped open is three system calls of metadata, and three separate trips
// (open, fstat, read) cost more than the calls themselves.
class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Function callback, std::string path, bool writable, size_t prefix_length)
      : Napi::AsyncWorker(callback, "tensorio:open"), path_(std::move(path)), writable_(writable), prefix_length_(prefix_length) {}

  void Execute() override {
    fd_ = open(path_.c_str(), (writable_ ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd_ < 0) return Fail(errno, "open");
    struct stat st;
    if (fstat(fd_, &st) != 0) return Fail(errno, "fstat");
    if (S_ISDIR(st.st_mode)) return Fail(EISDIR, "open");
    size_ = static_cast<uint64_t>(st.st_size);
    // Sized here, on the worker thread: the main thread never touches the buffer's pages.
    prefix_.resize(static_cast<size_t>(std::min<uint64_t>(prefix_length_, size_)));
    IoResult read = ReadFully(fd_, 0, prefix_.data(), prefix_.size());
    if (read.error != 0) return Fail(read.error, read.syscall);
    prefix_.resize(read.bytes);
  }

  void OnOK() override {
    Napi::Env env = Env();
    // The bytes read become the ArrayBuffer's memory, not a copy of it: a second buffer of up
    // to the prefix length would be fresh memory for the main thread to fault in.
    Napi::ArrayBuffer prefix;
    if (prefix_.empty()) {
      prefix = Napi::ArrayBuffer::New(env, 0);
    } else {
      auto* owned = new std::vector<uint8_t>(std::move(prefix_));
      prefix = Napi::ArrayBuffer::New(env, owned->data(), owned->size(), [](Napi::Env, void*, std::vector<uint8_t>* bytes) { delete bytes; }, owned);
    }
    Callback().Call({env.Null(), Napi::Number::New(env, fd_), Napi::Number::New(env, static_cast<double>(size_)), prefix});
  }

  void OnError(const Napi::Error&) override {
    Callback().Call({SystemError(Env(), error_, syscall_).Value()});
  }

 private:
  void Fail(int error, const char* syscall) {
    error_ = error;
    syscall_ = syscall;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    SetError(syscall);
  }

  std::string path_;
  bool writable_;
  size_t prefix_length_;
  std::vector<uint8_t> prefix_;
  int fd_ = -1;
  uint64_t size_ = 0;
  int error_ = 0;
  const char* syscall_ = nullptr;
};

// open(path, writable, prefixLength, callback(err, fd, size, prefix))
Napi::Value Open(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "open(path, writable, prefixLength, callback)");
  std::string path = ArgString(info, 0);
  bool writable = ArgBool(info, 1);
  uint64_t prefix_length = ArgSize(info, 2);
  if (prefix_length > (64u << 20)) ThrowRange(info.Env(), "prefixLength is limited to 64 MiB");
  Napi::Function callback = ArgFunction(info, 3);
  (new OpenWorker(callback, std::move(path), writable, static_cast<size_t>(prefix_length)))->Queue();
  return info.Env().Undefined();
}

// read(fd, position, target, callback(err, bytesRead)): fills target from the file, stopping
// early only at end of file.
Napi::Value Read(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "read(fd, position, target, callback)");
  int fd = ArgFd(info, 0);
  uint64_t position = ArgSize(info, 1);
  ByteSpan target = ArgBytes(info, 2);
  Napi::Function callback = ArgFunction(info, 3);
  auto run = [fd, position, target] { return ReadFully(fd, position, target.data, target.length); };
  (new IoWorker(callback, "tensorio:read", info[2].As<Napi::Object>(), run))->Queue();
  return info.Env().Undefined();
}

// readSync(fd, position, target[, partLength]) -> bytesRead: as read; with partLength, large
// reads go in parts of that many bytes at once (ReadFullyInParts), at most kMaxReadParts.
Napi::Value ReadSync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "readSync(fd, position, target[, partLength])");
  int fd = ArgFd(info, 0);
  uint64_t position = ArgSize(info, 1);
  ByteSpan target = ArgBytes(info, 2);
  uint64_t part_length = info.Length() > 3 && !info[3].IsUndefined() ? ArgSize(info, 3) : 0;
  if (part_length != 0 && (target.length + part_length - 1) / part_length > kMaxReadParts) {
    ThrowRange(info.Env(), "partLength splits the target into more than " + std::to_string(kMaxReadParts) + " parts");
  }
  IoResult result = ReadFullyInParts(fd, position, target.data, target.length, part_length);
  if (result.error != 0) throw SystemError(info.Env(), result.error, result.syscall);
  return Napi::Number::New(info.Env(), static_cast<double>(result.bytes));
}

// The four write entry points share their arguments and their work:
//   write(fd, position, chunks, callback(err, bytesWritten)) and writeSync(fd, position, chunks)
//     write the chunks back to back, gathered with pwritev, so a header and a tensor's own
//     buffer reach the file without ever being concatenated in memory;
//   writeDirect(directFd, fd, position, chunks, callback(err, bytesWritten, directBytes, refused))
//   and writeDirectSync(directFd, fd, position, chunks) -> { bytes, directBytes, refused } do the
//     same with the 4 KiB-aligned interior sent through `directFd`, the same file opened with
//     O_DIRECT (see WriteDirect in io_core.h). `refused`: the file system said EINVAL to direct
//     I/O, and the bytes went through `fd` instead.
//   writeThrough(fd, position, chunks, callback(err, bytesWritten)) and
//   writeThroughSync(fd, position, chunks) -> bytesWritten write through the page cache,
//     starting each 16 MiB block's writeback at once and dropping its pages two blocks later
//     (see WriteThrough in io_core.h), for writes that are fsynced next.
enum class WriteMode { kPlain, kDirect, kThrough };

struct WriteCall {
  WriteMode mode = WriteMode::kPlain;
  int direct_fd = kNoDirectFd;
  int fd = -1;
  uint64_t position = 0;
  std::vector<ByteSpan> chunks;

  IoResult Run() const { return mode == WriteMode::kThrough ? WriteThrough(fd, position, chunks) : WriteDirect(direct_fd, fd, position, chunks); }
};

const char* WriteSignature(WriteMode mode, bool async) {
  switch (mode) {
    case WriteMode::kDirect:
      return async ? "writeDirect(directFd, fd, position, chunks, callback)" : "writeDirectSync(directFd, fd, position, chunks)";
    case WriteMode::kThrough:
      return async ? "writeThrough(fd, position, chunks, callback)" : "writeThroughSync(fd, position, chunks)";
    default:
      return async ? "write(fd, position, chunks, callback)" : "writeSync(fd, position, chunks)";
  }
}

WriteCall ArgWrite(const Napi::CallbackInfo& info, WriteMode mode, Napi::Array* keep) {
  WriteCall call;
  call.mode = mode;
  size_t at = 0;
  if (mode == WriteMode::kDirect) call.direct_fd = ArgFd(info, at++);
  call.fd = ArgFd(info, at);
  call.position = ArgSize(info, at + 1);
  call.chunks = ArgChunks(info, at + 2, keep);
  return call;
}

Napi::Value QueueWrite(const Napi::CallbackInfo& info, WriteMode mode) {
  const size_t arity = mode == WriteMode::kDirect ? 5 : 4;
  RequireArgs(info, arity, WriteSignature(mode, true));
  Napi::Array keep;
  WriteCall call = ArgWrite(info, mode, &keep);
  Napi::Function callback = ArgFunction(info, arity - 1);
  auto run = [call = std::move(call)] { return call.Run(); };
  const char* name = mode == WriteMode::kDirect ? "tensorio:writeDirect" : mode == WriteMode::kThrough ? "tensorio:writeThrough" : "tensorio:write";
  (new IoWorker(callback, name, keep, std::move(run)))->Queue();
  return info.Env().Undefined();
}

IoResult WriteNow(const Napi::CallbackInfo& info, WriteMode mode) {
  RequireArgs(info, mode == WriteMode::kDirect ? 4 : 3, WriteSignature(mode, false));
  IoResult result = ArgWrite(info, mode, nullptr).Run();
  if (result.error != 0) throw SystemError(info.Env(), result.error, result.syscall);
  return result;
}

Napi::Value Write(const Napi::CallbackInfo& info) { return QueueWrite(info, WriteMode::kPlain); }

Napi::Value WriteDirectAsync(const Napi::CallbackInfo& info) { return QueueWrite(info, WriteMode::kDirect); }

Napi::Value WriteThroughAsync(const Napi::CallbackInfo& info) { return QueueWrite(info, WriteMode::kThrough); }

Napi::Value WriteSync(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(WriteNow(info, WriteMode::kPlain).bytes));
}

Napi::Value WriteThroughSync(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(WriteNow(info, WriteMode::kThrough).bytes));
}

Napi::Value WriteDirectSync(const Napi::CallbackInfo& info) {
  IoResult result = WriteNow(info, WriteMode::kDirect);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("bytes", static_cast<double>(result.bytes));
  out.Set("directBytes", static_cast<double>(result.direct_bytes));
  out.Set("refused", result.direct_refused);
  return out;
}

// exchange(from, to) -> boolean: swaps two paths in one step. An atomic write's commit uses it
// to put its file at the target: a plain rename over an existing file makes ext4 flush the
// new file's delayed allocations first (its auto_da_alloc heuristic), which cost 250 ms of a
// 512 MiB write without fsync; the exchange is a metadata step (0.1 ms), after which the old
// file, now at the temporary name, is removed. False when the kernel or file system cannot
// exchange, or when `to` does not exist: the caller then renames.
Napi::Value Exchange(const Napi::CallbackInfo& info) {
  RequireArgs(info, 2, "exchange(from, to)");
  if (!info[0].IsString() || !info[1].IsString()) ThrowType(info.Env(), "exchange(from, to) takes two paths");
  std::string from = info[0].As<Napi::String>().Utf8Value();
  std::string to = info[1].As<Napi::String>().Utf8Value();
#if defined(__linux__) && defined(SYS_renameat2)
  constexpr unsigned int kRenameExchange = 1u << 1;  // RENAME_EXCHANGE, linux/fs.h
  // A rename of a file over a folder fails; an exchange would succeed. Only files are swapped.
  struct stat st;
  if (lstat(to.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return Napi::Boolean::New(info.Env(), false);
  if (syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), kRenameExchange) == 0) {
    return Napi::Boolean::New(info.Env(), true);
  }
  int error = errno;
  if (error == ENOENT || error == EINVAL || error == ENOSYS || error == EOPNOTSUPP || error == EPERM) {
    return Napi::Boolean::New(info.Env(), false);
  }
  throw SystemError(info.Env(), error, "renameat2");
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace

void InitFileIo(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("readSync", Napi::Function::New(env, ReadSync, "readSync"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("writeSync", Napi::Function::New(env, WriteSync, "writeSync"));
  exports.Set("writeDirect", Napi::Function::New(env, WriteDirectAsync, "writeDirect"));
  exports.Set("writeDirectSync", Napi::Function::New(env, WriteDirectSync, "writeDirectSync"));
  exports.Set("writeThrough", Napi::Function::New(env, WriteThroughAsync, "writeThrough"));
  exports.Set("writeThroughSync", Napi::Function::New(env, WriteThroughSync, "writeThroughSync"));
  exports.Set("exchange", Napi::Function::New(env, Exchange, "exchange"));
}

}  // namespace tensorio
