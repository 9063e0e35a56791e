// Element conversions and byte swapping over raw memory, with no N-API: the addon's
// convert.cc wraps these, and the libFuzzer harnesses in native/fuzz/ call them directly.
//
// Loops are written so the compiler vectorises them; half-precision uses F16C when the CPU
// has it, chosen at run time so the addon still loads on CPUs without it.
#pragma once

#include <cpuid.h>
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace tensorio {

// IEEE half -> single, exact for every input (subnormals, infinities, NaN payloads).
inline float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {
      // Subnormal half: normalise into a single's exponent range.
      int shift = 0;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
      }
      mantissa &= 0x3ffu;
      bits = sign | (static_cast<uint32_t>(127 - 15 - shift + 1) << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// IEEE single -> half with round-to-nearest-even, as NumPy's astype(float16) does.
inline uint16_t FloatToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t exponent = (bits >> 23) & 0xffu;
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent == 0xff) {  // Inf or NaN; keep NaNs quiet and non-zero
    return static_cast<uint16_t>(sign | 0x7c00u | (mantissa ? (0x200u | (mantissa >> 13)) : 0));
  }
  int32_t half_exponent = static_cast<int32_t>(exponent) - 127 + 15;
  if (half_exponent >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> Inf
  if (half_exponent <= 0) {
    if (half_exponent < -10) return static_cast<uint16_t>(sign);  // underflow -> signed zero
    mantissa |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - half_exponent);
    uint32_t half_mantissa = mantissa >> shift;
    uint32_t remainder = mantissa & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (half_mantissa & 1u))) ++half_mantissa;
    return static_cast<uint16_t>(sign | half_mantissa);
  }
  uint32_t half = sign | (static_cast<uint32_t>(half_exponent) << 10) | (mantissa >> 13);
  uint32_t remainder = mantissa & 0x1fffu;
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (remainder > 0x1000u || (remainder == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(half);
}

inline uint16_t FloatToBfloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

__attribute__((target("avx,f16c"))) inline void HalfToFloatF16c(const uint16_t* src, float* dst, size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(half));
  }
  for (; i < count; ++i) dst[i] = HalfToFloat(src[i]);
}

__attribute__((target("avx,f16c"))) inline void FloatToHalfF16c(const float* src, uint16_t* dst, size_t count) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 single = _mm256_loadu_ps(src + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(single, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < count; ++i) dst[i] = FloatToHalf(src[i]);
}

// Asked of cpuid directly: clang before 15 rejects __builtin_cpu_supports("f16c"), which made
// the addon (and the fuzz harnesses) fail to compile with clang 14. AVX also needs the OS to
// save YMM registers (OSXSAVE, then XCR0 bits 1 and 2), which cpuid alone does not say.
inline bool CpuHasF16c() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const unsigned kOsxsave = 1u << 27, kAvx = 1u << 28, kF16c = 1u << 29;
    if ((ecx & (kOsxsave | kAvx | kF16c)) != (kOsxsave | kAvx | kF16c)) return false;
    unsigned xcr0_low = 0, xcr0_high = 0;
    __asm__("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    return (xcr0_low & 6u) == 6u;
  }();
  return has;
}

template <typename From, typename To>
inline void Cast(const void* src, void* dst, size_t count) {
  const From* in = static_cast<const From*>(src);
  To* out = static_cast<To*>(dst);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<To>(in[i]);
}

inline void Float16ToFloat32(const void* src, void* dst, size_t count) {
  const uint16_t* in = static_cast<const uint16_t*>(src);
  float* out = static_cast<float*>(dst);
  if (CpuHasF16c()) return HalfToFloatF16c(in, out, count);
  for (size_t i = 0; i < count; ++i) out[i] = HalfToFloat(in[i]);
}

inline void Float32ToFloat16(const void* src, void* dst, size_t count) {
  const float* in = static_cast<const float*>(src);
  uint16_t* out = static_cast<uint16_t*>(dst);
  if (CpuHasF16c()) return FloatToHalfF16c(in, out, count);
  for (size_t i = 0; i < count; ++i) out[i] = FloatToHalf(in[i]);
}

inline void Bfloat16ToFloat32(const void* src, void* dst, size_t count) {
  const uint16_t* in = static_cast<const uint16_t*>(src);
  uint32_t* out = static_cast<uint32_t*>(dst);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<uint32_t>(in[i]) << 16;
}

inline void Float32ToBfloat16(const void* src, void* dst, size_t count) {
  const float* in = static_cast<const float*>(src);
  uint16_t* out = static_cast<uint16_t*>(dst);
  for (size_t i = 0; i < count; ++i) out[i] = FloatToBfloat16(in[i]);
}

struct Conversion {
  const char* name;
  size_t from_size;
  size_t to_size;
  void (*run)(const void*, void*, size_t);
};

inline constexpr Conversion kConversions[] = {
    {"float16:float32", 2, 4, Float16ToFloat32},
    {"bfloat16:float32", 2, 4, Bfloat16ToFloat32},
    {"float32:float16", 4, 2, Float32ToFloat16},
    {"float32:bfloat16", 4, 2, Float32ToBfloat16},
    {"float64:float32", 8, 4, Cast<double, float>},
    {"float32:float64", 4, 8, Cast<float, double>},
    {"int8:float32", 1, 4, Cast<int8_t, float>},
    {"uint8:float32", 1, 4, Cast<uint8_t, float>},
    {"int16:float32", 2, 4, Cast<int16_t, float>},
    {"uint16:float32", 2, 4, Cast<uint16_t, float>},
    {"int32:float32", 4, 4, Cast<int32_t, float>},
    {"uint32:float32", 4, 4, Cast<uint32_t, float>},
    {"int64:float32", 8, 4, Cast<int64_t, float>},
    {"uint64:float32", 8, 4, Cast<uint64_t, float>},
};

inline bool Aligned(const void* pointer, size_t alignment) {
  return reinterpret_cast<uintptr_t>(pointer) % alignment == 0;
}

// The conversion named `name` ("float16:float32"), or nullptr.
inline const Conversion* FindConversion(const std::string& name) {
  for (const Conversion& conversion : kConversions) {
    if (name == conversion.name) return &conversion;
  }
  return nullptr;
}

inline uint16_t Bswap(uint16_t v) { return __builtin_bswap16(v); }
inline uint32_t Bswap(uint32_t v) { return __builtin_bswap32(v); }
inline uint64_t Bswap(uint64_t v) { return __builtin_bswap64(v); }

// memcpy in and out keeps this correct for unaligned views; compilers emit plain loads.
template <typename T>
inline void SwapEach(uint8_t* data, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, data + i * sizeof(T), sizeof(T));
    v = Bswap(v);
    std::memcpy(data + i * sizeof(T), &v, sizeof(T));
  }
}

// Reverses the bytes of each of the length / item_size items in place. item_size is 1, 2, 4
// or 8 and divides length (the caller checks).
inline void ByteswapInPlace(uint8_t* data, size_t length, size_t item_size) {
  size_t count = length / item_size;
  if (item_size == 2) SwapEach<uint16_t>(data, count);
  if (item_size == 4) SwapEach<uint32_t>(data, count);
  if (item_size == 8) SwapEach<uint64_t>(data, count);
}

}  // namespace tensorio
