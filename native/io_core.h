// Positioned reads and gathered writes over a file descriptor, with no N-API: the addon's
// file_io.cc runs these in its workers, and native/fuzz/fuzz_io.cc calls them directly.
#pragma once

#include <limits.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

#include "span.h"

namespace tensorio {

// Linux moves at most 0x7ffff000 bytes per read/write call; larger spans are looped.
inline constexpr size_t kMaxIo = 0x7ffff000;

struct IoResult {
  uint64_t bytes = 0;
  int error = 0;
  const char* syscall = nullptr;
};

// Asks for transparent huge pages on the 2 MiB-aligned interior of a large, still untouched
// destination. Filling fresh memory costs one page fault per 4 KiB page otherwise, which
// made eager reads 4x slower than NumPy (it does the same madvise for its large arrays).
// Advisory only: failures and kernels without THP change nothing.
inline void AdviseHugePages(uint8_t* data, size_t length) {
  constexpr uintptr_t kHuge = 2u << 20;
  if (length < 2 * kHuge) return;
  uintptr_t start = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + length) & ~(kHuge - 1);
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
}

inline IoResult ReadFully(int fd, uint64_t position, uint8_t* data, size_t length) {
  IoResult result;
  AdviseHugePages(data, length);
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

inline IoResult WriteFully(int fd, uint64_t position, const std::vector<ByteSpan>& chunks) {
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

}  // namespace tensorio
