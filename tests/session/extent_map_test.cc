// ExtentMap against a byte-per-byte model: random adds and truncates on a
// small file, every query checked after each step. Covers the inline
// single-range form and the switches to and from the map.
#include "session/extent_map.h"

#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

namespace upfs::session {
namespace {

constexpr uint64_t kSize = 64;

// The ranges of `have` as [begin, end) runs; `want` picks set or unset bytes.
std::vector<Extent> Runs(const std::vector<bool>& have, uint64_t begin, uint64_t end, bool want) {
  std::vector<Extent> out;
  for (uint64_t i = begin; i < end; ++i) {
    if (have[i] != want) continue;
    if (!out.empty() && out.back().end == i) {
      out.back().end = i + 1;
    } else {
      out.push_back({i, i + 1});
    }
  }
  return out;
}

void CheckSame(const ExtentMap& map, const std::vector<bool>& have) {
  std::vector<Extent> all = Runs(have, 0, kSize, true);
  REQUIRE(map.RangeCount() == all.size());
  REQUIRE(map.End() == (all.empty() ? 0 : all.back().end));
  uint64_t received = 0;
  for (const Extent& e : all) received += e.end - e.begin;
  REQUIRE(map.BytesReceived() == received);
  for (uint64_t len : {uint64_t{0}, kSize / 3, kSize})
    REQUIRE(map.Missing(len) == Runs(have, 0, len, false));
  for (uint64_t b = 0; b <= kSize; b += 5) {
    for (uint64_t e = b; e <= kSize; e += 7) {
      REQUIRE(map.Covered(b, e) == Runs(have, b, e, true));
      REQUIRE(map.Intersects(b, e) == !Runs(have, b, e, true).empty());
    }
    uint64_t end = b;
    while (end < kSize && have[end]) ++end;
    REQUIRE(map.ContiguousEnd(b) == end);
  }
}

TEST_CASE("ExtentMap matches a byte model through adds and truncates", "[extent_map]") {
  std::mt19937_64 rng(Catch::rngSeed());
  for (int round = 0; round < 50; ++round) {
    ExtentMap map;
    std::vector<bool> have(kSize + 1, false);  // one spare so ContiguousEnd stops
    CheckSame(map, have);
    for (int step = 0; step < 40; ++step) {
      CAPTURE(round, step);
      if (rng() % 8 == 0) {
        uint64_t len = rng() % (kSize + 1);
        map.Truncate(len);
        for (uint64_t i = len; i < kSize; ++i) have[i] = false;
      } else {
        uint64_t b = rng() % kSize, e = b + rng() % (kSize - b + 1);
        map.Add(b, e);
        for (uint64_t i = b; i < e; ++i) have[i] = true;
      }
      CheckSame(map, have);
    }
    map.Clear();
    CheckSame(map, std::vector<bool>(kSize + 1, false));
  }
}

TEST_CASE("ExtentMap::Minus gives the bytes one map has and the other has not", "[extent_map]") {
  std::mt19937_64 rng(Catch::rngSeed());
  for (int round = 0; round < 200; ++round) {
    CAPTURE(round);
    ExtentMap maps[2];
    std::vector<bool> have[2] = {std::vector<bool>(kSize, false), std::vector<bool>(kSize, false)};
    for (int step = 0; step < 12; ++step) {
      const int which = static_cast<int>(rng() % 2);
      uint64_t b = rng() % kSize, e = b + rng() % (kSize - b + 1);
      maps[which].Add(b, e);
      for (uint64_t i = b; i < e; ++i) have[which][i] = true;
    }
    for (int which = 0; which < 2; ++which) {
      std::vector<bool> only(kSize);
      for (uint64_t i = 0; i < kSize; ++i) only[i] = have[which][i] && !have[1 - which][i];
      REQUIRE(maps[which].Minus(maps[1 - which]) == Runs(only, 0, kSize, true));
    }
    REQUIRE(maps[0].Minus(maps[0]).empty());
    REQUIRE(maps[0].Minus(ExtentMap()) == maps[0].Covered(0, kSize));
  }
}

}  // namespace
}  // namespace upfs::session
