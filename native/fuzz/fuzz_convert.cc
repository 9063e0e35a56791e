// libFuzzer harness for the conversion and byte-swap kernels (native/convert_core.h).
// Not part of the addon: scripts/fuzz-native.sh builds it with clang under AddressSanitizer
// and UndefinedBehaviorSanitizer.
//
// Input: byte 0 picks a conversion (or the byte swap), byte 1 an offset into the buffers (to
// test unaligned byte swaps), the rest is the source data. Besides the sanitizers, it checks
// differential and algebraic properties that need no reference implementation:
//   - F16C and scalar half conversions agree bit for bit (NaNs: both NaN);
//   - half -> single -> half and bfloat16 -> single -> bfloat16 are the identity (non-NaN);
//   - swapping twice is the identity, and one swap equals reversing each item by hand.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../convert_core.h"

using namespace tensorio;

namespace {

[[noreturn]] void Fail(const char* what, size_t index) {
  __builtin_printf("property violated: %s at element %zu\n", what, index);
  std::abort();
}

bool HalfIsNan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

void CheckHalves(const uint16_t* halves, size_t count) {
  std::vector<float> fast(count), slow(count);
  if (CpuHasF16c()) HalfToFloatF16c(halves, fast.data(), count);
  for (size_t i = 0; i < count; ++i) slow[i] = HalfToFloat(halves[i]);
  std::vector<uint16_t> back(count), back_slow(count);
  if (CpuHasF16c()) FloatToHalfF16c(slow.data(), back.data(), count);
  for (size_t i = 0; i < count; ++i) {
    back_slow[i] = FloatToHalf(slow[i]);
    if (HalfIsNan(halves[i])) {
      if (!std::isnan(slow[i])) Fail("half NaN -> single is not NaN", i);
      if (CpuHasF16c() && !std::isnan(fast[i])) Fail("F16C half NaN -> single is not NaN", i);
      continue;
    }
    if (CpuHasF16c() && std::memcmp(&fast[i], &slow[i], 4) != 0) Fail("F16C and scalar half -> single differ", i);
    if (back_slow[i] != halves[i]) Fail("half -> single -> half is not the identity", i);
    if (CpuHasF16c() && back[i] != halves[i]) Fail("F16C half -> single -> half is not the identity", i);
  }
}

void CheckSingles(const float* singles, size_t count) {
  if (!CpuHasF16c()) return;
  std::vector<uint16_t> fast(count);
  FloatToHalfF16c(singles, fast.data(), count);
  for (size_t i = 0; i < count; ++i) {
    uint16_t slow = FloatToHalf(singles[i]);
    if (std::isnan(singles[i])) {
      if (!HalfIsNan(slow) || !HalfIsNan(fast[i])) Fail("single NaN -> half is not NaN", i);
      continue;
    }
    if (slow != fast[i]) Fail("F16C and scalar single -> half differ", i);
  }
}

void CheckBfloat16(const uint16_t* values, size_t count) {
  std::vector<float> singles(count);
  std::vector<uint16_t> back(count);
  Bfloat16ToFloat32(values, singles.data(), count);
  Float32ToBfloat16(singles.data(), back.data(), count);
  for (size_t i = 0; i < count; ++i) {
    bool nan = (values[i] & 0x7f80u) == 0x7f80u && (values[i] & 0x7fu) != 0;
    if (nan ? (back[i] & 0x7f80u) != 0x7f80u || (back[i] & 0x7fu) == 0 : back[i] != values[i]) {
      Fail("bfloat16 -> single -> bfloat16 is not the identity", i);
    }
  }
}

void CheckByteswap(const uint8_t* data, size_t size, size_t offset) {
  static const size_t kItems[] = {1, 2, 4, 8};
  for (size_t item : kItems) {
    size_t length = size - size % item;
    std::vector<uint8_t> buffer(length + offset + 8);
    uint8_t* at = buffer.data() + offset;  // deliberately unaligned
    std::memcpy(at, data, length);
    ByteswapInPlace(at, length, item);
    for (size_t i = 0; i < length; ++i) {
      size_t base = i - i % item;
      if (at[i] != data[base + (item - 1 - i % item)]) Fail("byteswap differs from reversing each item", i);
    }
    ByteswapInPlace(at, length, item);
    if (std::memcmp(at, data, length) != 0) Fail("byteswap twice is not the identity", 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 2) return 0;
  constexpr size_t kCount = sizeof(kConversions) / sizeof(kConversions[0]);
  size_t pick = input[0] % (kCount + 1);
  size_t offset = input[1] % 8;
  const uint8_t* data = input + 2;
  size_t length = size - 2;
  if (pick == kCount) {
    CheckByteswap(data, length, offset);
    return 0;
  }
  const Conversion& conversion = kConversions[pick];
  size_t count = length / conversion.from_size;
  // Aligned copies, as the addon requires (it refuses unaligned buffers before converting).
  std::vector<uint64_t> src((count * conversion.from_size + 7) / 8 + 1);
  std::vector<uint64_t> dst((count * conversion.to_size + 7) / 8 + 1);
  std::memcpy(src.data(), data, count * conversion.from_size);
  conversion.run(src.data(), dst.data(), count);
  if (std::strcmp(conversion.name, "float16:float32") == 0) CheckHalves(reinterpret_cast<const uint16_t*>(src.data()), count);
  if (std::strcmp(conversion.name, "float32:float16") == 0) CheckSingles(reinterpret_cast<const float*>(src.data()), count);
  if (std::strcmp(conversion.name, "bfloat16:float32") == 0) CheckBfloat16(reinterpret_cast<const uint16_t*>(src.data()), count);
  return 0;
}
