// Positioned reads and writes on file descriptors, off the event loop.
//
// The TypeScript layer opens files, checks sizes and renames; this file only moves bytes
// between a descriptor and memory the caller already owns, so an eager read allocates its
// final buffer once and the kernel copies straight into it.
#include "file_io.h"

#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "args.h"

namespace tensorio {
namespace {

// Linux moves at most 0x7ffff000 bytes per read/write call; larger spans are looped.
constexpr size_t kMaxIo = 0x7ffff000;

struct IoResult {
  uint64_t bytes = 0;
  int error = 0;
  const char* syscall = nullptr;
};

IoResult ReadFully(int fd, uint64_t position, uint8_t* data, size_t length) {
  IoResult result;
  while (result.bytes < length) {
    size_t want = std::min(length - static_cast<size_t>(result.bytes), kMaxIo);
    ssize_t got = pread(fd, data + result.bytes, want, static_cast<off_t>(position + result.bytes));
    if (got < 0) {
      if (errno == EINTR) continue;
      result.error = errno;
      result.syscall = "pread";
      return result;
    }
    if (got == 0) break;  // end of file: the caller compares bytes with what it expected
    result.bytes += static_cast<uint64_t>(got);
  }
  return result;
}

IoResult WriteFully(int fd, uint64_t position, const std::vector<ByteSpan>& chunks) {
  IoResult result;
  std::vector<iovec> pending;
  pending.reserve(chunks.size());
  for (const ByteSpan& chunk : chunks) {
    // Split oversized chunks so no single iovec exceeds what one call can move.
    for (size_t done = 0; done < chunk.length; done += kMaxIo) {
      pending.push_back({chunk.data + done, std::min(chunk.length - done, kMaxIo)});
    }
  }
  size_t first = 0;
  while (first < pending.size()) {
    size_t count = std::min(pending.size() - first, static_cast<size_t>(IOV_MAX));
    ssize_t wrote = pwritev(fd, pending.data() + first, static_cast<int>(count),
                            static_cast<off_t>(position + result.bytes));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      result.error = errno;
      result.syscall = "pwritev";
      return result;
    }
    if (wrote == 0) {
      result.error = EIO;
      result.syscall = "pwritev";
      return result;
    }
    result.bytes += static_cast<uint64_t>(wrote);
    // Drop the iovecs that were written in full and trim a partially written one.
    size_t remaining = static_cast<size_t>(wrote);
    while (remaining > 0 && first < pending.size()) {
      if (remaining >= pending[first].iov_len) {
        remaining -= pending[first].iov_len;
        ++first;
      } else {
        pending[first].iov_base = static_cast<uint8_t*>(pending[first].iov_base) + remaining;
        pending[first].iov_len -= remaining;
        remaining = 0;
      }
    }
    while (first < pending.size() && pending[first].iov_len == 0) ++first;
  }
  return result;
}

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

// The worker keeps the JS buffers it touches alive with references taken on the main thread,
// and never touches N-API inside Execute.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Function callback, int fd, uint64_t position, ByteSpan target, Napi::Value keep)
      : Napi::AsyncWorker(callback, "tensorio:read"), fd_(fd), position_(position), target_(target) {
    keep_ = Napi::Persistent(keep.As<Napi::Object>());
  }

  void Execute() override {
    result_ = ReadFully(fd_, position_, target_.data, target_.length);
    if (result_.error != 0) SetError(result_.syscall);
  }

  void OnOK() override {
    Callback().Call({Env().Null(), Napi::Number::New(Env(), static_cast<double>(result_.bytes))});
  }

  void OnError(const Napi::Error&) override {
    Callback().Call({SystemError(Env(), result_.error, result_.syscall).Value()});
  }

 private:
  int fd_;
  uint64_t position_;
  ByteSpan target_;
  Napi::ObjectReference keep_;
  IoResult result_;
};

class WriteWorker : public Napi::AsyncWorker {
 public:
  WriteWorker(Napi::Function callback, int fd, uint64_t position, std::vector<ByteSpan> chunks, Napi::Array keep)
      : Napi::AsyncWorker(callback, "tensorio:write"), fd_(fd), position_(position), chunks_(std::move(chunks)) {
    keep_ = Napi::Persistent(keep.As<Napi::Object>());
  }

  void Execute() override {
    result_ = WriteFully(fd_, position_, chunks_);
    if (result_.error != 0) SetError(result_.syscall);
  }

  void OnOK() override {
    Callback().Call({Env().Null(), Napi::Number::New(Env(), static_cast<double>(result_.bytes))});
  }

  void OnError(const Napi::Error&) override {
    Callback().Call({SystemError(Env(), result_.error, result_.syscall).Value()});
  }

 private:
  int fd_;
  uint64_t position_;
  std::vector<ByteSpan> chunks_;
  Napi::ObjectReference keep_;
  IoResult result_;
};

// read(fd, position, target, callback(err, bytesRead)): fills target from the file, stopping
// early only at end of file.
Napi::Value Read(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "read(fd, position, target, callback)");
  int fd = ArgFd(info, 0);
  uint64_t position = ArgSize(info, 1);
  ByteSpan target = ArgBytes(info, 2);
  Napi::Function callback = ArgFunction(info, 3);
  (new ReadWorker(callback, fd, position, target, info[2]))->Queue();
  return info.Env().Undefined();
}

Napi::Value ReadSync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "readSync(fd, position, target)");
  int fd = ArgFd(info, 0);
  uint64_t position = ArgSize(info, 1);
  ByteSpan target = ArgBytes(info, 2);
  IoResult result = ReadFully(fd, position, target.data, target.length);
  if (result.error != 0) throw SystemError(info.Env(), result.error, result.syscall);
  return Napi::Number::New(info.Env(), static_cast<double>(result.bytes));
}

// write(fd, position, chunks, callback(err, bytesWritten)): writes the chunks back to back,
// gathered with pwritev, so a header and a tensor's own buffer reach the file without ever
// being concatenated in memory.
Napi::Value Write(const Napi::CallbackInfo& info) {
  RequireArgs(info, 4, "write(fd, position, chunks, callback)");
  int fd = ArgFd(info, 0);
  uint64_t position = ArgSize(info, 1);
  Napi::Array keep;
  std::vector<ByteSpan> chunks = ArgChunks(info, 2, &keep);
  Napi::Function callback = ArgFunction(info, 3);
  (new WriteWorker(callback, fd, position, std::move(chunks), keep))->Queue();
  return info.Env().Undefined();
}

Napi::Value WriteSync(const Napi::CallbackInfo& info) {
  RequireArgs(info, 3, "writeSync(fd, position, chunks)");
  int fd = ArgFd(info, 0);
  uint64_t position = ArgSize(info, 1);
  std::vector<ByteSpan> chunks = ArgChunks(info, 2, nullptr);
  IoResult result = WriteFully(fd, position, chunks);
  if (result.error != 0) throw SystemError(info.Env(), result.error, result.syscall);
  return Napi::Number::New(info.Env(), static_cast<double>(result.bytes));
}

}  // namespace

void InitFileIo(Napi::Env env, Napi::Object exports) {
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("readSync", Napi::Function::New(env, ReadSync, "readSync"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("writeSync", Napi::Function::New(env, WriteSync, "writeSync"));
}

}  // namespace tensorio
