// The tensorio addon: byte-level primitives only (map, read, write, convert). Every format
// lives in the TypeScript layer; see src/native.ts for the one place that loads this.
#include <napi.h>

#include "convert.h"
#include "file_io.h"
#include "mapping.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tensorio::InitMapping(env, exports);
  tensorio::InitFileIo(env, exports);
  tensorio::InitConvert(env, exports);
  // Bumped whenever the binding's functions change, so a stale build is detected.
  exports.Set("abiVersion", Napi::Number::New(env, 3));
  return exports;
}

}  // namespace

NODE_API_MODULE(tensorio, Init)
