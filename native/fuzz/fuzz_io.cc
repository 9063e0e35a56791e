// libFuzzer harness for the positioned read and gathered write kernels (native/io_core.h) and
// for mappings of what they wrote. Not part of the addon: scripts/fuzz-native.sh builds it
// with clang under AddressSanitizer and UndefinedBehaviorSanitizer.
//
// The input is a little program: a start position, then chunks (a length byte, a repeat count
// that can push one write past IOV_MAX iovecs, and the bytes), written with WriteFully or
// WriteDirect to an anonymous file (memfd) while a model std::vector is updated the same way.
// Then the file is read back with ReadFully or ReadFullyInParts in fuzz-chosen slices (including
// past the end) and mapped with mmap, and every byte must match the model.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../io_core.h"

using namespace tensorio;

namespace {

[[noreturn]] void Fail(const char* what, size_t at) {
  __builtin_printf("property violated: %s at %zu\n", what, at);
  std::abort();
}

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  bool More() const { return at < size; }
  uint8_t Byte() { return at < size ? data[at++] : 0; }
  uint16_t Short() { return static_cast<uint16_t>(Byte() | (Byte() << 8)); }
};

// The memfd opened again with O_DIRECT, or the memfd itself where tmpfs has no direct I/O.
int DirectFd(int fd) {
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  int direct = open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  return direct >= 0 ? direct : fd;
}

// /proc/self/clear_refs answers EINVAL to anything but a small number, as a file system
// without direct I/O answers a direct write.
int RefusingFd() {
  static int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  return fd;
}

bool HasAlignedInterior(size_t position, const std::vector<ByteSpan>& chunks) {
  size_t total = 0;
  for (const ByteSpan& chunk : chunks) total += chunk.length;
  PageRange pages = WholePages(position, total);
  return pages.end > pages.begin;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  Reader in{input, size};
  int fd = memfd_create("tensorio-fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<uint8_t> model;
  std::vector<std::vector<uint8_t>> storage;
  // Up to 4 write calls, each gathering many chunks.
  for (int call = 0; call < 4 && in.More(); ++call) {
    size_t position = in.Short() % 8192;
    size_t chunk_count = in.Byte();
    std::vector<ByteSpan> chunks;
    for (size_t c = 0; c < chunk_count && in.More(); ++c) {
      size_t length = in.Byte() % 64;
      // Sometimes one chunk repeated past IOV_MAX (1024), so a write needs several pwritev calls.
      size_t repeat = in.Byte() % 16 == 0 ? 1100 : 1;
      storage.emplace_back(length);
      for (size_t i = 0; i < length; ++i) storage.back()[i] = in.Byte();
      for (size_t r = 0; r < repeat && chunks.size() < 4096; ++r) chunks.push_back({storage.back().data(), length});
    }
    // Half the calls go through WriteDirect: through a second descriptor opened with O_DIRECT
    // (tmpfs has it since Linux 6.6; else a plain one, which takes aligned writes as well), or
    // through one whose every write is refused with EINVAL, with bounce blocks of 1-4 pages.
    uint8_t how = in.Byte();
    IoResult wrote;
    bool refusing = false;
    if (how % 2 == 0) {
      wrote = WriteFully(fd, position, chunks);
    } else {
      refusing = how % 4 == 3;
      int direct = refusing ? RefusingFd() : DirectFd(fd);
      wrote = WriteDirect(direct, fd, position, chunks, kDirectAlign * (1 + (how >> 2) % 4));
      if (!refusing && direct != fd) close(direct);
      // The stand-in refuses with EINVAL only bytes that do not start with a number: it takes
      // "5" (resetting this process's peak RSS) and answers ERANGE to a number too large. Such
      // an input proves nothing, so it ends here.
      if (refusing && (wrote.direct_bytes != 0 || wrote.error != 0)) {
        close(fd);
        return 0;
      }
      if (refusing && wrote.bytes != 0 && !wrote.direct_refused && HasAlignedInterior(position, chunks)) {
        Fail("a refusing descriptor was not reported", position);
      }
      if (wrote.direct_bytes % kDirectAlign != 0) Fail("a direct write of part of a page", wrote.direct_bytes);
    }
    size_t total = 0;
    for (const ByteSpan& chunk : chunks) total += chunk.length;
    if (wrote.error != 0 || wrote.bytes != total) Fail("short or failed write", total);
    if (total == 0) continue;  // writing nothing does not extend the file
    if (model.size() < position) model.resize(position, 0);  // a hole reads as zeros
    size_t at = position;
    for (const ByteSpan& chunk : chunks) {
      if (model.size() < at + chunk.length) model.resize(at + chunk.length);
      if (chunk.length > 0) std::memcpy(model.data() + at, chunk.data, chunk.length);
      at += chunk.length;
    }
  }
  // Reads of fuzz-chosen slices, some running past the end of the file.
  for (int r = 0; r < 8 && in.More(); ++r) {
    size_t position = in.Short() % (model.size() + 64);
    size_t length = in.Short() % 16384;
    // Some reads go in parts on threads (ReadFullyInParts), up to four, of a fuzz-chosen size.
    size_t parts = in.Short() % 5;
    size_t part_length = parts == 0 ? 0 : std::max<size_t>(1, (length + parts - 1) / parts);
    std::vector<uint8_t> got(length + 1);
    IoResult read = ReadFullyInParts(fd, position, got.data(), length, part_length);
    size_t expect = position >= model.size() ? 0 : std::min(length, model.size() - position);
    if (read.error != 0 || read.bytes != expect) Fail("read returned the wrong count", position);
    if (expect > 0 && std::memcmp(got.data(), model.data() + position, expect) != 0) Fail("read returned the wrong bytes", position);
  }
  if (!model.empty()) {
    void* map = mmap(nullptr, model.size(), PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) Fail("mmap failed", model.size());
    if (std::memcmp(map, model.data(), model.size()) != 0) Fail("mapping differs from what was written", 0);
    munmap(map, model.size());
  }
  close(fd);
  return 0;
}
