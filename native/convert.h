#pragma once
#include <napi.h>

namespace tensorio {
void InitConvert(Napi::Env env, Napi::Object exports);
}
