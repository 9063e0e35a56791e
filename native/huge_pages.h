// When to ask for transparent huge pages on fresh memory that a read is about to fill: the
// policy shared by allocate() (mapping.cc) and ReadFully (io_core.h), and the record of read
// buffers freed lately that it rests on. No N-API: the fuzzers include io_core.h.
//
// Why a policy and not always: on a virtual machine whose balloon device reports free pages
// to the host (virtio-balloon VIRTIO_BALLOON_F_REPORTING), the guest's free blocks of 2 MiB and
// more are handed back to the host about two seconds after they are freed, and the host
// faults its memory in again on first touch. A huge page is exactly such a block, so filling
// fresh memory through huge pages pays the host's faults: 512 MiB took 0.9-1.3 s (one thread)
// on this project's 2-core VM, against 46 ms when the huge pages were blocks freed a moment
// before and 200-240 ms in 4 KiB pages whatever their history (bench/README.md, "Fresh eager
// read"). NumPy asks for huge pages on every large array and pays the 1 s in a fresh process.
// So, where the host takes free pages back, huge pages are asked for only when this process
// freed at least as many bytes of read buffers within the last half second (they are then
// likely still the guest's: a process that reads the same file over and over keeps its 46 ms);
// a fresh process fills 4 KiB pages. Measured with a C loop of mmap + touch + munmap of 512 MiB
// (bench/results/fresh-read-2026-12-07.txt): back to back, huge pages 46-62 ms a round after the
// first; 1 s apart, half the rounds took 390-460 ms. The first huge-page buffer after 4 KiB
// ones may still pay the host once (0.2-1.1 s): a warm process's second read, not every read.
// Elsewhere (bare metal, VMs without reporting) huge pages are always asked for, as before.
#pragma once

#include <dirent.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

namespace tensorio {

// Whether a virtio balloon device on this machine reports free pages to the host: its
// device id is 0x0005 and bit 5 (VIRTIO_BALLOON_F_REPORTING) of its negotiated features, a
// string of '0'/'1' with bit 0 first in sysfs, is set. Read once.
inline bool HostReclaimsFreePages() {
  static const bool reclaims = [] {
    DIR* dir = opendir("/sys/bus/virtio/devices");
    if (dir == nullptr) return false;
    bool found = false;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::string base = std::string("/sys/bus/virtio/devices/") + entry->d_name;
      char text[160] = {0};
      FILE* device = std::fopen((base + "/device").c_str(), "r");
      if (device == nullptr) continue;
      bool balloon = std::fgets(text, sizeof text, device) != nullptr && std::strncmp(text, "0x0005", 6) == 0;
      std::fclose(device);
      if (!balloon) continue;
      FILE* features = std::fopen((base + "/features").c_str(), "r");
      if (features == nullptr) continue;
      if (std::fgets(text, sizeof text, features) != nullptr && std::strlen(text) > 5 && text[5] == '1') found = true;
      std::fclose(features);
    }
    closedir(dir);
    return found;
  }();
  return reclaims;
}

// Read buffers freed lately, process-wide (the kernel's free lists are not per thread).
struct RecentlyFreed {
  std::mutex mutex;
  std::chrono::steady_clock::time_point last{};
  uint64_t bytes = 0;
};

inline RecentlyFreed& RecentlyFreedPages() {
  static RecentlyFreed* recent = new RecentlyFreed();  // never freed: deleters may run at exit
  return *recent;
}

// Well under the two-second delay after which the kernel reports a freed block.
inline constexpr std::chrono::milliseconds kRecentWindow{500};

// Called when a read buffer of `length` bytes has been unmapped.
inline void NoteFreedReadBuffer(uint64_t length) {
  RecentlyFreed& recent = RecentlyFreedPages();
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(recent.mutex);
  if (now - recent.last > kRecentWindow) recent.bytes = 0;
  recent.bytes += length;
  recent.last = now;
}

// Whether fresh memory of `length` bytes, about to be filled, should be huge pages. A yes on a
// reclaiming host takes its bytes from the recently freed ones.
inline bool HugePagesPayFor(uint64_t length) {
  if (!HostReclaimsFreePages()) return true;
  RecentlyFreed& recent = RecentlyFreedPages();
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(recent.mutex);
  if (now - recent.last > kRecentWindow || recent.bytes < length) return false;
  recent.bytes -= length;
  return true;
}

}  // namespace tensorio
