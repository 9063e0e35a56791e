// A byte range in memory, shared by the N-API layer (args.h) and the N-API-free cores.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tensorio {

struct ByteSpan {
  uint8_t* data = nullptr;
  size_t length = 0;
};

}  // namespace tensorio
