// Removing a committed asset (rmdir assets/NAME): atomic, readers keep
// reading until they close, bytes freed then (or at the next start);
// -o worm refuses; files inside stay immutable, and rm -r's steps inside
// (CheckAssetRemovalStep) are checked and change nothing.
#include <random>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

std::vector<store::Extent> ExtentsOf(EngineFixture& fx, uint64_t blob) {
  std::vector<store::Extent> extents;
  REQUIRE_OK(fx.store().OpenBlob(blob)->Extents(&extents));
  return extents;
}

std::vector<uint64_t> Removed(EngineFixture& fx) {
  std::vector<uint64_t> out;
  REQUIRE_OK(fx.store().ListRemovedBlobs(&out));
  return out;
}

// Asset "a": a 3 MB file "big" and "d/small"; returns their ids.
std::pair<uint64_t, uint64_t> CommitAsset(EngineFixture& fx, const std::string& big,
                                          const std::string& small) {
  const uint64_t s = fx.Begin("a");
  fx.PutFile(s, "big", big);
  fx.PutFile(fx.MakeDir(s, "d"), "small", small);
  REQUIRE_OK(fx.FinishViaHandle(s, ""));
  return {fx.AssetId("a", "big"), fx.AssetId("a", "d/small")};
}

}  // namespace

TEMPLATE_TEST_CASE(
    "assets: rmdir removes an asset whole, open readers read on, bytes freed when they close",
    "[engine][assets]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  Engine& e = fx.engine();
  std::mt19937_64 rng(3);
  const std::string big = RandomBytes(rng, 3'000'000), small = RandomBytes(rng, 5000);
  const auto [big_id, small_id] = CommitAsset(fx, big, small);
  const uint64_t root = fx.AssetId("a", "");
  // Files and directories inside stay immutable.
  REQUIRE_CODE(e.Unlink(fx.AssetId("a", "d"), "small"), kReadOnly);
  REQUIRE_CODE(e.Rmdir(root, "d"), kReadOnly);
  REQUIRE_CODE(e.Rmdir(kAssetsId, "nothing"), kNotFound);

  const uint64_t h = fx.OpenRead(big_id);
  REQUIRE_OK(e.Rmdir(kAssetsId, "a"));
  // Gone at once, everywhere.
  REQUIRE(Names(e.ReadDir(kAssetsId)).empty());
  REQUIRE_CODE(e.Lookup(kAssetsId, "a"), kNotFound);
  REQUIRE_CODE(e.GetAttr(root), kNotFound);
  REQUIRE_CODE(e.GetAttr(small_id), kNotFound);
  REQUIRE_CODE(e.OpenHandle(small_id, OpenMode{}), kNotFound);
  std::vector<store::AssetRecord> assets;
  REQUIRE_OK(fx.store().ListAssets(&assets));
  REQUIRE(assets.empty());
  std::vector<store::AssetEntry> entries;
  REQUIRE_OK(fx.store().ListAssetEntries("a", &entries));
  REQUIRE(entries.empty());
  REQUIRE(ExtentsOf(fx, small_id).empty());
  // The open file reads on, whole, until closed.
  REQUIRE(Removed(fx) == std::vector<uint64_t>{big_id});
  std::string read;
  while (read.size() < big.size()) {
    auto piece = e.Read(big_id, h, read.size(), 1 << 20);
    REQUIRE_OK(piece);
    REQUIRE(!piece->empty());
    read += *piece;
  }
  REQUIRE(read == big);
  fx.Release(big_id, h);
  REQUIRE(Removed(fx).empty());
  REQUIRE(ExtentsOf(fx, big_id).empty());
  // The name is free again.
  const uint64_t again = fx.Begin("a");
  fx.PutFile(again, "x", "new");
  REQUIRE_OK(fx.FinishViaHandle(again, ""));
  fx.CheckAssetFile("a", "x", "new");
}

TEST_CASE("assets: a file kept for a reader is freed at the next start", "[engine][assets]") {
  EngineFixture fx(Backend::kLevelDb);
  std::mt19937_64 rng(4);
  const auto [big_id, small_id] = CommitAsset(fx, RandomBytes(rng, 2'000'000), "tiny");
  fx.OpenRead(big_id);  // never released: the daemon stops with it open
  REQUIRE_OK(fx.engine().Rmdir(kAssetsId, "a"));
  REQUIRE(Removed(fx) == std::vector<uint64_t>{big_id});
  REQUIRE(!ExtentsOf(fx, big_id).empty());
  fx.Reopen();
  REQUIRE(Removed(fx).empty());
  REQUIRE(ExtentsOf(fx, big_id).empty());
  REQUIRE(ExtentsOf(fx, small_id).empty());
}

TEMPLATE_TEST_CASE("assets: rm -r's steps inside an asset are checked and change nothing",
                   "[engine][assets]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  Engine& e = fx.engine();
  CommitAsset(fx, "big bytes", "small bytes");  // owned by kAlice
  const uint64_t root = fx.AssetId("a", ""), d = fx.AssetId("a", "d");
  // The owner and root may take each step; nothing changes.
  REQUIRE_OK(e.CheckAssetRemovalStep(root, "big", /*is_dir=*/false, kAlice));
  REQUIRE_OK(e.CheckAssetRemovalStep(d, "small", /*is_dir=*/false, Caller{0, 0}));
  REQUIRE_OK(e.CheckAssetRemovalStep(root, "d", /*is_dir=*/true, kAlice));
  fx.CheckAssetFile("a", "big", "big bytes");
  fx.CheckAssetFile("a", "d/small", "small bytes");
  // Someone else may not; wrong types and missing names are told apart.
  Status other = e.CheckAssetRemovalStep(root, "big", false, Caller{1001, 1001});
  REQUIRE_CODE(other, kNotPermitted);
  REQUIRE(Contains(other.message(), "uid 1000"));
  REQUIRE_CODE(e.CheckAssetRemovalStep(root, "d", /*is_dir=*/false, kAlice), kIsDirectory);
  REQUIRE_CODE(e.CheckAssetRemovalStep(root, "big", /*is_dir=*/true, kAlice), kNotDirectory);
  REQUIRE_CODE(e.CheckAssetRemovalStep(d, "nothing", false, kAlice), kNotFound);
  // Outside an asset there is no such step.
  const uint64_t s = fx.Begin("open");
  REQUIRE_CODE(e.CheckAssetRemovalStep(s, "x", false, kAlice), kReadOnly);
  // A lone unlink inside an asset says how a whole asset goes.
  Status lone = e.Unlink(root, "big");
  REQUIRE_CODE(lone, kReadOnly);
  REQUIRE(Contains(lone.message(), "rm -r assets/NAME"));
  // The last step removes it whole.
  REQUIRE_OK(e.Rmdir(kAssetsId, "a"));
  REQUIRE_CODE(e.CheckAssetRemovalStep(root, "big", false, kAlice), kReadOnly);
}

TEMPLATE_TEST_CASE("assets: -o worm refuses every removal", "[engine][assets]", MemoryBackend,
                   LevelDbBackend) {
  FixtureOptions options;
  options.engine.worm = true;
  EngineFixture fx(TestType::kBackend, options);
  CommitAsset(fx, "big bytes", "small bytes");
  Status refused = fx.engine().Rmdir(kAssetsId, "a");
  REQUIRE_CODE(refused, kReadOnly);
  REQUIRE(Contains(refused.message(), "worm"));
  REQUIRE_CODE(fx.engine().CheckAssetRemovalStep(fx.AssetId("a", ""), "big", false, kAlice),
               kReadOnly);
  fx.CheckAssetFile("a", "big", "big bytes");
  fx.CheckAssetFile("a", "d/small", "small bytes");
}

}  // namespace upfs::session::testing
