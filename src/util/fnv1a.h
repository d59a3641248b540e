// FNV-1a, 64-bit: a fast, stable hash of bytes, the same on every platform (std::hash is not),
// for keys that name things across runs: seeds mixed with ids, model fingerprints, texts.
#pragma once

#include <cstdint>
#include <string_view>

namespace ponder {

inline constexpr uint64_t kFnv1aBasis = 0xcbf29ce484222325ull;

// Hashes `bytes` on from `h` (the basis to start; an earlier result to continue).
inline uint64_t fnv1a(std::string_view bytes, uint64_t h = kFnv1aBasis) {
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace ponder
