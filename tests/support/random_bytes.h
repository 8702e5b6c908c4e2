// RandomBytes: reproducible pseudo-random test data from a seeded engine.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace upfs::testing {

inline std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  if (i < n) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, n - i);
  }
  return out;
}

}  // namespace upfs::testing
