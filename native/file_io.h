#pragma once
#include <napi.h>

namespace tensorio {
void InitFileIo(Napi::Env env, Napi::Object exports);
}
