// Freed blobs on the LevelDB store: the space of a deleted blob is given
// back at once (its blob files go; only small extent records were in
// LevelDB, and Compact clears their tombstones).
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "store/leveldb_kv.h"
#include "store/store.h"
#include "tests/support/random_bytes.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {
namespace {

namespace fs = std::filesystem;

uint64_t BytesUnder(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

}  // namespace

TEST_CASE("space: a deleted blob gives its space back at once, and no other blob's", "[store]") {
  upfs::testing::TempDir tmp;
  auto opened = OpenLevelDbStore(tmp.path().string());
  INFO(opened.status().ToString());
  REQUIRE(opened.ok());
  Store& store = **opened;
  std::mt19937_64 rng(7);
  const std::string big = upfs::testing::RandomBytes(rng, 6 << 20);
  const std::string kept = upfs::testing::RandomBytes(rng, 100000);

  // Blobs 10 and 14 freed, 12 (between them) and 20 kept.
  for (uint64_t blob : {10, 14}) REQUIRE(store.OpenBlob(blob)->WriteAt(0, big).ok());
  for (uint64_t blob : {12, 20}) REQUIRE(store.OpenBlob(blob)->WriteAt(0, kept).ok());
  REQUIRE(store.Apply(Batch{}, /*sync=*/true).ok());
  const uint64_t before = BytesUnder(tmp.path());
  REQUIRE(before >= 2 * big.size());

  Batch free;
  free.DeleteBlobData(10);
  free.DeleteBlobData(14);
  REQUIRE(store.Apply(free, /*sync=*/false).ok());
  const uint64_t after = BytesUnder(tmp.path());
  INFO("store bytes before " << before << ", after " << after);
  REQUIRE(after < before - 2 * big.size() + (1 << 20));

  for (uint64_t blob : {12, 20}) {
    std::string out(kept.size(), '\0');
    REQUIRE(store.OpenBlob(blob)->ReadAt(0, out.size(), out.data()).ok());
    REQUIRE(out == kept);
  }
  std::string out(4, '\0');
  REQUIRE(store.OpenBlob(10)->ReadAt(0, 4, out.data()).ok());
  REQUIRE(out == std::string(4, '\0'));  // a freed blob reads as a gap
  REQUIRE(store.Compact().ok());
  REQUIRE(store.OpenBlob(20)->ReadAt(0, 4, out.data()).ok());
  REQUIRE(out == kept.substr(0, 4));
}

}  // namespace upfs::store
