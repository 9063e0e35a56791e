// Element conversions and byte swapping over raw buffers: argument checks around the kernels
// of convert_core.h.
//
// No format knowledge: the TypeScript layer names a conversion ("float16:float32") and hands
// over the source and destination bytes.
#include "convert.h"

#include <string>

#include "args.h"
#include "convert_core.h"

namespace tensorio {
namespace {

// convert(name, src, dst): src and dst hold the same number of elements.
Napi::Value Convert(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireArgs(info, 3, "convert(name, src, dst)");
  std::string name = ArgString(info, 0);
  ByteSpan src = ArgBytes(info, 1);
  ByteSpan dst = ArgBytes(info, 2);
  if (const Conversion* found = FindConversion(name)) {
    const Conversion& conversion = *found;
    if (src.length % conversion.from_size != 0) ThrowRange(env, "source length is not a whole number of elements");
    size_t count = src.length / conversion.from_size;
    if (dst.length != count * conversion.to_size) ThrowRange(env, "destination length does not match the source");
    if (!Aligned(src.data, conversion.from_size) || !Aligned(dst.data, conversion.to_size)) {
      ThrowRange(env, "buffers must be aligned to their element size");
    }
    conversion.run(src.data, dst.data, count);
    return env.Undefined();
  }
  ThrowType(env, "unknown conversion '" + name + "'");
  return env.Undefined();
}

// byteswap(bytes, itemSize): reverses the bytes of each item in place.
Napi::Value Byteswap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireArgs(info, 2, "byteswap(bytes, itemSize)");
  ByteSpan bytes = ArgBytes(info, 0);
  uint64_t item_size = ArgSize(info, 1);
  if (item_size != 1 && item_size != 2 && item_size != 4 && item_size != 8) ThrowRange(env, "itemSize must be 1, 2, 4 or 8");
  if (bytes.length % item_size != 0) ThrowRange(env, "length is not a whole number of items");
  ByteswapInPlace(bytes.data, bytes.length, static_cast<size_t>(item_size));
  return env.Undefined();
}

Napi::Value Features(const Napi::CallbackInfo& info) {
  Napi::Object features = Napi::Object::New(info.Env());
  features.Set("f16c", Napi::Boolean::New(info.Env(), CpuHasF16c()));
  return features;
}

}  // namespace

void InitConvert(Napi::Env env, Napi::Object exports) {
  exports.Set("convert", Napi::Function::New(env, Convert, "convert"));
  exports.Set("byteswap", Napi::Function::New(env, Byteswap, "byteswap"));
  exports.Set("features", Napi::Function::New(env, Features, "features"));
}

}  // namespace tensorio
