// Positioned reads and gathered writes over a file descriptor, with no N-API: the addon's
// file_io.cc runs these in its workers, and native/fuzz/fuzz_io.cc calls them directly.
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <system_error>
#include <thread>
#include <vector>

#include "span.h"

namespace tensorio {

// Linux moves at most 0x7ffff000 bytes per read/write call; larger spans are looped.
inline constexpr size_t kMaxIo = 0x7ffff000;

struct IoResult {
  uint64_t bytes = 0;
  int error = 0;
  const char* syscall = nullptr;
  // WriteDirect only: the bytes that went around the page cache, and whether the file system
  // refused direct I/O (everything then went through the page cache).
  uint64_t direct_bytes = 0;
  bool direct_refused = false;
};

// No madvise here: whether fresh memory should be huge pages is decided where the addon makes
// it (mapping.cc, allocate, by huge_pages.h's policy). This used to ask for huge pages on every
// large destination, which on a VM whose host takes back free pages made the first read of a
// fresh process 0.5-2.8 s for 512 MiB instead of about 0.3 s.
inline IoResult ReadFully(int fd, uint64_t position, uint8_t* data, size_t length) {
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

// The most parts the addon's readSync accepts: each part past the first is a thread.
inline constexpr size_t kMaxReadParts = 16;

// ReadFully in parts of `part_length` bytes read at once, the calling thread taking the
// first and a new thread each of the others. One thread faulting in fresh pages and copying
// from the page cache leaves the other cores idle; the async path splits the same way on
// the thread pool (src/io.ts, readAtSplit), which a synchronous caller does not reach.
// Returns the error of the first failed part in file order, if any part failed (the async
// path fails too then, with whichever part failed first in time); else the bytes of the
// contiguous prefix read, short only at end of file. Nothing here throws: a thread that
// cannot be started leaves its part to the calling thread, and no memory for the
// bookkeeping means one plain read.
inline IoResult ReadFullyInParts(int fd, uint64_t position, uint8_t* data, size_t length, uint64_t part_length_in) {
  if (part_length_in == 0 || part_length_in >= length) return ReadFully(fd, position, data, length);
  const size_t part_length = static_cast<size_t>(part_length_in);  // below length, so exact
  const size_t count = (length + part_length - 1) / part_length;
  std::vector<IoResult> results;
  std::vector<std::thread> threads;
  try {
    results.resize(count);
    // Reserved up front: a reallocation after a thread has started could throw, and a
    // joinable std::thread destroyed by the unwinding would terminate the process.
    threads.reserve(count - 1);
  } catch (...) {
    return ReadFully(fd, position, data, length);
  }
  auto part_size = [&](size_t i) { return std::min(part_length, length - i * part_length); };
  auto read_part = [&](size_t i) { results[i] = ReadFully(fd, position + i * part_length, data + i * part_length, part_size(i)); };
  for (size_t i = 1; i < count; ++i) {
    try {
      threads.emplace_back(read_part, i);
    } catch (...) {
      read_part(i);
    }
  }
  read_part(0);
  for (std::thread& thread : threads) thread.join();
  for (const IoResult& result : results) {
    if (result.error != 0) return result;
  }
  IoResult total;
  for (size_t i = 0; i < count; ++i) {
    total.bytes += results[i].bytes;
    if (results[i].bytes < part_size(i)) break;
  }
  return total;
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

// Direct I/O (O_DIRECT) needs the file offset, the length and the memory address aligned to
// the device's logical block; 4 KiB covers 512-byte and 4 KiB devices alike.
inline constexpr uint64_t kDirectAlign = 4096;
// One bounce buffer per call: tensors' own buffers are almost never 4 KiB-aligned in memory.
inline constexpr size_t kDirectBlock = 16u << 20;

// The whole kDirectAlign pages of the file range [position, position + length): [begin, end),
// empty when end <= begin.
struct PageRange {
  uint64_t begin;
  uint64_t end;
};
inline PageRange WholePages(uint64_t position, uint64_t length) {
  return {(position + kDirectAlign - 1) / kDirectAlign * kDirectAlign, (position + length) / kDirectAlign * kDirectAlign};
}

// The bytes [from, to) of the chunks laid back to back, as spans of the chunks themselves.
inline std::vector<ByteSpan> SpansBetween(const std::vector<ByteSpan>& chunks, uint64_t from, uint64_t to) {
  std::vector<ByteSpan> spans;
  uint64_t at = 0;
  for (const ByteSpan& chunk : chunks) {
    uint64_t begin = std::max(from, at);
    uint64_t end = std::min(to, at + chunk.length);
    if (begin < end) spans.push_back({chunk.data + (begin - at), static_cast<size_t>(end - begin)});
    at += chunk.length;
    if (at >= to) break;
  }
  return spans;
}

// Writes the chunks back to back from `position`, like WriteFully, but sends the 4 KiB-aligned
// interior through `direct_fd` (the same file opened with O_DIRECT), copied block by block into
// one aligned buffer; the unaligned head and tail go through `fd`. Why: a buffered write of
// gigabytes must first find as many free pages for the page cache, and on some machines
// (virtual machines whose host reclaims free guest memory) that costs more than the disk:
// 2 GiB took 8.1 s buffered and 1.4-1.5 s direct on the 2-core VM the project is measured on.
// If the file system refuses direct I/O (EINVAL), the rest goes through `fd` and the result
// says so. Both descriptors name one file, and the page ranges the two paths write are
// disjoint, so the kernel keeps them coherent.
// `block_size` (a multiple of kDirectAlign) is the bounce buffer's size; the fuzz harness
// makes it small so its short inputs cross block boundaries. With `direct_fd` kNoDirectFd
// (the addon's plain `write`), this is WriteFully.
inline constexpr int kNoDirectFd = -1;
inline IoResult WriteDirect(int direct_fd, int fd, uint64_t position, const std::vector<ByteSpan>& chunks,
                            size_t block_size = kDirectBlock) {
  IoResult result;
  uint64_t total = 0;
  for (const ByteSpan& chunk : chunks) total += chunk.length;
  PageRange pages = WholePages(position, total);
  if (direct_fd == kNoDirectFd || pages.end <= pages.begin) return WriteFully(fd, position, chunks);
  // Offsets relative to the first byte of the chunks.
  uint64_t middle_begin = pages.begin - position;
  uint64_t middle_end = pages.end - position;

  auto buffered = [&](uint64_t from, uint64_t to) {
    if (from >= to) return true;
    IoResult part = WriteFully(fd, position + from, SpansBetween(chunks, from, to));
    result.bytes += part.bytes;
    if (part.error != 0) {
      result.error = part.error;
      result.syscall = part.syscall;
      return false;
    }
    return true;
  };
  if (!buffered(0, middle_begin)) return result;

  void* memory = nullptr;
  size_t block = static_cast<size_t>(std::min<uint64_t>(block_size, middle_end - middle_begin));
  if (posix_memalign(&memory, kDirectAlign, block) != 0) {
    result.error = ENOMEM;
    result.syscall = "posix_memalign";
    return result;
  }
  uint8_t* bounce = static_cast<uint8_t*>(memory);
  uint64_t at = middle_begin;
  while (at < middle_end && !result.direct_refused) {
    size_t length = static_cast<size_t>(std::min<uint64_t>(block, middle_end - at));
    size_t filled = 0;
    for (const ByteSpan& span : SpansBetween(chunks, at, at + length)) {
      std::memcpy(bounce + filled, span.data, span.length);
      filled += span.length;
    }
    size_t done = 0;
    while (done < length) {
      ssize_t wrote = pwrite(direct_fd, bounce + done, length - done, static_cast<off_t>(position + at + done));
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote < 0 && errno == EINVAL) {
        result.direct_refused = true;
        break;
      }
      if (wrote <= 0) {
        result.error = wrote < 0 ? errno : EIO;
        result.syscall = "pwrite";
        free(memory);
        return result;
      }
      done += static_cast<size_t>(wrote);
      result.direct_bytes += static_cast<uint64_t>(wrote);
      // A short write that ends off the alignment: the rest of this block goes buffered.
      if (done < length && done % kDirectAlign != 0) break;
    }
    result.bytes += done;
    at += done;
    if (done < length && !buffered(at, at + (length - done))) {
      free(memory);
      return result;
    }
    if (done < length) at += length - done;
  }
  free(memory);
  buffered(at, total);
  return result;
}

// Writes the chunks back to back from `position` through the page cache, a block of
// `block_size` bytes (file offsets, a multiple of the page size) at a time: each block's
// writeback starts as soon as it is written (sync_file_range WRITE), and `kThroughLag` blocks
// later the writer waits for it and drops its pages (posix_fadvise DONTNEED). For a write that
// is fsynced next, this overlaps copying with the disk, where a buffered write copies
// everything first and the fsync then waits for all of it; and the file holds at most a few
// blocks of page cache at a time. Why that matters: on the VM of bench/results, page cache
// memory the kernel has not used lately costs 5-10x more to fill than pages just freed (the
// host gives it back one fault at a time), and an atomic replace needs a second file's worth
// while the old file still holds its own; blocks dropped as they go let the next block reuse
// the pages just freed. 512 MiB with fsync: 0.8x the O_DIRECT path's time, and no bounce copy
// or alignment. sync_file_range makes nothing durable by itself: the caller's fsync does.
// Where it is missing (not Linux, or a file system that refuses it) this is WriteFully.
inline constexpr size_t kThroughBlock = 16u << 20;
inline constexpr size_t kThroughLag = 2;
inline IoResult WriteThrough(int fd, uint64_t position, const std::vector<ByteSpan>& chunks, size_t block_size = kThroughBlock) {
  uint64_t total = 0;
  for (const ByteSpan& chunk : chunks) total += chunk.length;
#if defined(__linux__)
  IoResult result;
  if (block_size == 0 || block_size % kDirectAlign != 0) block_size = kThroughBlock;
  struct Range {
    uint64_t offset;
    uint64_t length;
  };
  std::deque<Range> unsettled;  // written, writeback started, pages not yet dropped
  bool streaming = true;
  auto fail = [&](const char* syscall) {
    result.error = errno;
    result.syscall = syscall;
    return result;
  };
  uint64_t at = 0;
  while (at < total) {
    uint64_t file_at = position + at;
    uint64_t block_end = (file_at / block_size + 1) * block_size;
    uint64_t end = std::min(total, block_end - position);
    IoResult part = WriteFully(fd, file_at, SpansBetween(chunks, at, end));
    result.bytes += part.bytes;
    if (part.error != 0) {
      result.error = part.error;
      result.syscall = part.syscall;
      return result;
    }
    if (streaming) {
      if (sync_file_range(fd, static_cast<off64_t>(file_at), static_cast<off64_t>(end - at), SYNC_FILE_RANGE_WRITE) != 0) {
        // Not every file system streams (EINVAL, ESPIPE); the bytes are written either way.
        if (errno != EINVAL && errno != ESPIPE && errno != ENOSYS && errno != EOPNOTSUPP) return fail("sync_file_range");
        streaming = false;
        unsettled.clear();
      } else {
        unsettled.push_back({file_at, end - at});
      }
    }
    while (streaming && unsettled.size() > kThroughLag) {
      Range done = unsettled.front();
      unsettled.pop_front();
      constexpr unsigned int kWait = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
      if (sync_file_range(fd, static_cast<off64_t>(done.offset), static_cast<off64_t>(done.length), kWait) != 0) return fail("sync_file_range");
      // Advisory: pages still dirty or mapped elsewhere stay, which is only slower.
      posix_fadvise(fd, static_cast<off_t>(done.offset), static_cast<off_t>(done.length), POSIX_FADV_DONTNEED);
    }
    at = end;
  }
  return result;
#else
  (void)block_size;
  (void)total;
  return WriteFully(fd, position, chunks);
#endif
}

}  // namespace tensorio
