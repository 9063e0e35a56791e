#pragma once
#include <napi.h>

namespace tensorio {
void InitMapping(Napi::Env env, Napi::Object exports);
}
