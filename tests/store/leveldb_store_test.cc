// Opening stores: what is a upfs store and what is refused (format record,
// foreign directories, a store already in use).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "store/blob_files.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/memory_kv.h"
#include "store/records.h"
#include "tests/store/store_fixture.h"
#include "tests/support/random_bytes.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {
namespace {

namespace fs = std::filesystem;
using upfs::testing::TempDir;

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Reopens fx's store after `downgrade` (a write that turns it into a store
// of an older format) and checks it came back as the current format, with
// each blob of `bytes` reading back as it holds.
void ReopenAfter(testing::StoreFixture& fx, const KvWrite& downgrade,
                 const std::map<uint64_t, std::string>& bytes) {
  REQUIRE(fx.kv().Commit(downgrade, /*sync=*/true).ok());
  fx.Reopen();
  std::string format;
  REQUIRE(fx.kv().Get(keys::kFormatKey, &format).ok());
  CHECK(format == keys::kFormatValue);
  for (const auto& [blob, expected] : bytes) {
    INFO("blob " << blob);
    std::string out(expected.size(), '\1');
    REQUIRE(fx.store().OpenBlob(blob)->ReadAt(0, out.size(), out.data()).ok());
    CHECK(out == expected);
  }
}

// Adds to `w` the moves of fx's extent records that `which` picks back to
// format 5's tag, as stores of formats 3 to 5 keep them. Returns how many.
template <typename Pick>
size_t MoveToFormat5Tag(testing::StoreFixture& fx, KvWrite* w, Pick which) {
  size_t moved = 0;
  const std::string tag = keys::ExtentPrefix();
  REQUIRE(fx.kv()
              .Scan(tag, keys::PrefixEnd(tag),
                    [&](std::string_view k, std::string_view v) {
                      if (!which(k)) return true;
                      std::string old(k);
                      old[0] = keys::kFormat5ExtentTag;
                      w->Put(old, std::string(v));
                      w->Delete(std::string(k));
                      ++moved;
                      return true;
                    })
              .ok());
  return moved;
}

// How many keys fx's store holds under `tag`.
size_t KeysUnder(testing::StoreFixture& fx, char tag) {
  size_t n = 0;
  const std::string prefix(1, tag);
  REQUIRE(fx.kv()
              .Scan(prefix, keys::PrefixEnd(prefix),
                    [&](std::string_view, std::string_view) {
                      ++n;
                      return true;
                    })
              .ok());
  return n;
}

}  // namespace

TEST_CASE("open: a missing directory becomes a new store and keeps its data", "[store]") {
  TempDir tmp;
  std::string dir = tmp.Sub("nested/store");
  {
    auto store = OpenLevelDbStore(dir);
    INFO(store.status().ToString());
    REQUIRE(store.ok());
    REQUIRE(fs::is_directory(fs::path(dir) / "db"));
    REQUIRE((*store)->OpenBlob(20)->WriteAt(0, "kept").ok());
    REQUIRE((*store)->Apply(Batch{}, /*sync=*/true).ok());
  }
  auto store = OpenLevelDbStore(dir);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  std::string out(4, '\0');
  REQUIRE((*store)->OpenBlob(20)->ReadAt(0, 4, out.data()).ok());
  REQUIRE(out == "kept");
}

TEST_CASE("open: an empty directory, or one holding only upfs.log, becomes a store", "[store]") {
  TempDir tmp;
  SECTION("empty") {
    auto store = OpenLevelDbStore(tmp.path().string());
    INFO(store.status().ToString());
    REQUIRE(store.ok());
  }
  SECTION("only the daemon's log") {
    WriteFile(tmp.path() / "upfs.log", "started\n");
    auto store = OpenLevelDbStore(tmp.path().string());
    INFO(store.status().ToString());
    REQUIRE(store.ok());
    REQUIRE(ReadFile(tmp.path() / "upfs.log") == "started\n");
  }
  REQUIRE(fs::is_directory(tmp.path() / "db"));
}

TEST_CASE("open: a directory with other files and no db/ is refused and left alone", "[store]") {
  TempDir tmp;
  WriteFile(tmp.path() / "photo.jpg", "not a database");
  auto store = OpenLevelDbStore(tmp.path().string());
  REQUIRE(!store.ok());
  REQUIRE(store.status().code() == Status::Code::kInvalidArgument);
  REQUIRE(Contains(store.status().message(), "not a upfs store"));
  REQUIRE(!fs::exists(tmp.path() / "db"));
  REQUIRE(ReadFile(tmp.path() / "photo.jpg") == "not a database");
  REQUIRE(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("open: a second open of a store in use fails with Busy", "[store]") {
  TempDir tmp;
  std::string dir = tmp.Sub("store");
  {
    auto first = OpenLevelDbStore(dir);
    REQUIRE(first.ok());
    auto second = OpenLevelDbStore(dir);
    REQUIRE(!second.ok());
    INFO(second.status().ToString());
    REQUIRE(second.status().code() == Status::Code::kBusy);
    REQUIRE(Contains(second.status().message(), "in use"));
    // The first is unharmed.
    REQUIRE((*first)->OpenBlob(30)->WriteAt(0, "x").ok());
  }
  // Once the first closes, the store opens again.
  auto third = OpenLevelDbStore(dir);
  INFO(third.status().ToString());
  REQUIRE(third.ok());
}

TEST_CASE("open: a store of another format version is refused with both versions", "[store]") {
  TempDir tmp;
  std::string dir = tmp.Sub("store");
  fs::create_directories(dir);
  {
    auto kv = OpenLevelDbKv(dir + "/db", /*create=*/true);
    INFO(kv.status().ToString());
    REQUIRE(kv.ok());
    KvWrite write;
    write.Put(std::string(keys::kFormatKey), "upfs-store 99");
    std::string next;
    keys::AppendBigEndian64(&next, 1000);
    write.Put(std::string(keys::kNextIdKey), next);
    REQUIRE((*kv)->Commit(write, /*sync=*/true).ok());
  }
  auto store = OpenLevelDbStore(dir);
  REQUIRE(!store.ok());
  INFO(store.status().ToString());
  REQUIRE(store.status().code() == Status::Code::kInvalidArgument);
  REQUIRE(Contains(store.status().message(), "upfs-store 99"));
  REQUIRE(Contains(store.status().message(), std::string(keys::kFormatValue)));
  // Refusing must not rewrite the record.
  auto kv = OpenLevelDbKv(dir + "/db", /*create=*/false);
  REQUIRE(kv.ok());
  std::string format;
  REQUIRE((*kv)->Get(keys::kFormatKey, &format).ok());
  REQUIRE(format == "upfs-store 99");
}

TEST_CASE("open: a store of format 3 gains its blobs' end records in place and reads as before",
          "[store]") {
  testing::StoreFixture fx(testing::Backend::kLevelDb, testing::LevelDbBlobs::kMemory);
  std::mt19937_64 rng(3);
  std::map<uint64_t, std::string> bytes;  // what each blob holds
  // One large blob (several chunks), one of 5000 one-byte chunks (more than
  // one window of the upgrade's scan), one small; a deleted one between.
  bytes[20] = upfs::testing::RandomBytes(rng, 3 * kMaxChunkBytes + 77);
  REQUIRE(fx.store().OpenBlob(20)->WriteAt(0, bytes[20]).ok());
  bytes[21] = std::string(10000, '\0');
  for (uint64_t i = 0; i < 5000; ++i) {
    bytes[21][2 * i + 1] = static_cast<char>(i | 1);
    REQUIRE(fx.store().OpenBlob(21)->WriteAt(2 * i + 1, bytes[21].substr(2 * i + 1, 1)).ok());
  }
  REQUIRE(fx.store().OpenBlob(22)->WriteAt(0, "gone").ok());
  bytes[23] = "small";
  REQUIRE(fx.store().OpenBlob(23)->WriteAt(1000, bytes[23]).ok());
  bytes[23].insert(0, 1000, '\0');
  Batch free;
  free.DeleteBlobData(22);
  REQUIRE(fx.store().Apply(free, /*sync=*/true).ok());
  // Back to format 3: no end records, extent records under "X".
  KvWrite downgrade;
  for (uint64_t blob : {20, 21, 23}) downgrade.Delete(keys::BlobEnd(blob));
  MoveToFormat5Tag(fx, &downgrade, [](std::string_view k) { return !keys::IsBlobEnd(k); });
  downgrade.Put(std::string(keys::kFormatKey), std::string(keys::kFormatWithoutBlobEnds));
  ReopenAfter(fx, downgrade, bytes);

  for (const auto& [blob, expected] : bytes) {
    INFO("blob " << blob);
    testing::CheckChunkLayout(fx.kv(), fx.blobs(), blob);
    std::string end;
    REQUIRE(fx.kv().Get(keys::BlobEnd(blob), &end).ok());
    uint64_t bound = 0;
    REQUIRE(DecodeBlobEnd(end, &bound));
    CHECK(bound == expected.size());  // exactly where its last chunk ends
  }
  std::string none;
  CHECK(fx.kv().Get(keys::BlobEnd(22), &none).IsNotFound());
}

TEST_CASE("open: a store of format 4 is upgraded in place and reads as before", "[store]") {
  testing::StoreFixture fx(testing::Backend::kLevelDb, testing::LevelDbBlobs::kMemory);
  std::mt19937_64 rng(4);
  // Format 4 had no inline chunks: bytes in the blob files only.
  const std::string big = upfs::testing::RandomBytes(rng, 2 * kMaxChunkBytes + 5);
  REQUIRE(fx.store().OpenBlob(30)->WriteAt(0, big).ok());
  KvWrite downgrade;
  MoveToFormat5Tag(fx, &downgrade, [](std::string_view) { return true; });
  downgrade.Put(std::string(keys::kFormatKey), std::string(keys::kFormatWithoutInline));
  ReopenAfter(fx, downgrade, {{30, big}});
  CHECK(KeysUnder(fx, keys::kFormat5ExtentTag) == 0);
  // And takes inline chunks from then on.
  REQUIRE(fx.store().OpenBlob(31)->WriteAt(0, "small").ok());
  std::string value;
  REQUIRE(fx.kv().Get(keys::Extent(31, 0), &value).ok());
  CHECK(value.size() == kExtentValueSize + 5);
}

TEST_CASE("open: a store of format 6 reads its inline chunks as before and packs new small files",
          "[store][pack]") {
  testing::StoreFixture fx(testing::Backend::kLevelDb);
  REQUIRE(fx.blobs().CanPunch());
  // Format 6 kept small files inline.
  KvWrite downgrade;
  downgrade.Put(keys::Extent(60, 0), EncodeInlineExtentValue("hello"));
  downgrade.Put(keys::BlobEnd(60), EncodeBlobEnd(5));
  downgrade.Put(std::string(keys::kFormatKey), std::string(keys::kFormatWithoutPacks));
  ReopenAfter(fx, downgrade, {{60, "hello"}});
  REQUIRE(fx.store().OpenBlob(61)->WriteAt(0, "small").ok());
  std::string value;
  REQUIRE(fx.kv().Get(keys::Extent(61, 0), &value).ok());
  CHECK(value.size() == kPackedExtentValueSize);
  std::string out(5, '\0');
  REQUIRE(fx.store().OpenBlob(61)->ReadAt(0, 5, out.data()).ok());
  CHECK(out == "small");
}

TEST_CASE("packs: a new pack's id is never handed out again, even with no commit after it",
          "[store][pack]") {
  testing::StoreFixture fx(testing::Backend::kLevelDb);
  REQUIRE(fx.blobs().CanPunch());
  const uint64_t blob = fx.store().NewIds(1).value();
  Batch none;
  REQUIRE(fx.store().Apply(none, /*sync=*/true).ok());  // the counter is past `blob`
  // The first small write makes a pack, with an id of its own.
  REQUIRE(fx.store().OpenBlob(blob)->WriteAt(0, "small").ok());
  std::string value;
  REQUIRE(fx.kv().Get(keys::Extent(blob, 0), &value).ok());
  REQUIRE(value.size() == kPackedExtentValueSize);
  const uint64_t pack = testing::PackedAtOf(value).pack;
  REQUIRE(pack > blob);
  // No Apply (which also writes the counter) before the store is opened
  // again: the pack's own record carried the counter past its id.
  fx.Reopen();
  CHECK(fx.store().NewIds(1).value() > pack);
}

TEST_CASE("packs: pages whose chunks' records a crash removed first are freed at the next start",
          "[store][pack]") {
  testing::StoreFixture fx(testing::Backend::kLevelDb);
  REQUIRE(fx.blobs().CanPunch());
  std::mt19937_64 rng(7);
  const std::string kept = upfs::testing::RandomBytes(rng, kInlineChunkEnd);
  REQUIRE(
      fx.store().OpenBlob(70)->WriteAt(0, upfs::testing::RandomBytes(rng, kInlineChunkEnd)).ok());
  REQUIRE(fx.store().OpenBlob(71)->WriteAt(0, kept).ok());
  std::string value;
  REQUIRE(fx.kv().Get(keys::Extent(70, 0), &value).ok());
  REQUIRE(value.size() == kPackedExtentValueSize);
  const PackedAt packed = testing::PackedAtOf(value);
  const uint64_t pack = packed.pack, at = packed.offset;
  auto pack_bytes = [&] {
    Result<uint64_t> bytes = fx.blobs().StoredBytes(pack);
    REQUIRE(bytes.ok());
    return *bytes;
  };
  const uint64_t both = pack_bytes();
  // The records go; the crash comes before the pages are punched out.
  dynamic_cast<KvStore&>(fx.store()).SkipPackFreesForTest(true);
  Batch del;
  del.DeleteBlobData(70);
  REQUIRE(fx.store().Apply(del, /*sync=*/true).ok());
  CHECK(pack_bytes() == both);
  CHECK(fx.kv().Get(keys::PendingFree(pack, at), &value).ok());
  fx.Reopen();
  REQUIRE(dynamic_cast<KvStore&>(fx.store()).BeginUse().ok());
  CHECK(pack_bytes() == both - kInlineChunkEnd);
  CHECK(fx.kv().Get(keys::PendingFree(pack, at), &value).IsNotFound());
  std::string out(kept.size(), '\0');
  REQUIRE(fx.store().OpenBlob(71)->ReadAt(0, out.size(), out.data()).ok());
  CHECK(out == kept);
}

TEST_CASE(
    "open: a store of format 5 has its extent records moved to the new tag, also after an "
    "interrupted move",
    "[store]") {
  // The interrupted move: a crash between two of the upgrade's batches
  // leaves some records under each tag, and format 5 in the format record.
  const bool interrupted = GENERATE(false, true);
  INFO("interrupted: " << interrupted);
  testing::StoreFixture fx(testing::Backend::kLevelDb, testing::LevelDbBlobs::kMemory);
  std::mt19937_64 rng(5);
  std::map<uint64_t, std::string> bytes;
  bytes[40] = upfs::testing::RandomBytes(rng, 2 * kMaxChunkBytes + 9);  // in the blob files
  REQUIRE(fx.store().OpenBlob(40)->WriteAt(0, bytes[40]).ok());
  // 5000 inline chunks: more than one window of the move.
  bytes[41] = upfs::testing::RandomBytes(rng, 10000);
  for (uint64_t i = 0; i < 5000; ++i) {
    REQUIRE(fx.store().OpenBlob(41)->WriteAt(2 * i, bytes[41].substr(2 * i, 2)).ok());
  }
  const size_t records = KeysUnder(fx, keys::kExtentTag);
  REQUIRE(records > 5000);
  KvWrite downgrade;
  size_t seen = 0;
  const size_t moved = MoveToFormat5Tag(
      fx, &downgrade, [&](std::string_view) { return !interrupted || seen++ % 3 != 0; });
  REQUIRE(moved > 3000);
  downgrade.Put(std::string(keys::kFormatKey), std::string(keys::kFormatExtentsAmongRecords));
  ReopenAfter(fx, downgrade, bytes);
  CHECK(KeysUnder(fx, keys::kFormat5ExtentTag) == 0);
  CHECK(KeysUnder(fx, keys::kExtentTag) == records);
  // Later writes of those blobs see their chunks (a write over moved chunks
  // replaces them, none is left behind under either tag).
  REQUIRE(fx.store().OpenBlob(41)->WriteAt(0, std::string(10000, 'z')).ok());
  std::string out(10000, '\0');
  REQUIRE(fx.store().OpenBlob(41)->ReadAt(0, out.size(), out.data()).ok());
  CHECK(out == std::string(10000, 'z'));
  testing::CheckChunkLayout(fx.kv(), fx.blobs(), 41);
}

TEST_CASE("open: a LevelDB database without a format record is refused", "[store]") {
  TempDir tmp;
  std::string dir = tmp.Sub("store");
  fs::create_directories(dir);
  {
    auto kv = OpenLevelDbKv(dir + "/db", /*create=*/true);
    INFO(kv.status().ToString());
    REQUIRE(kv.ok());
    KvWrite write;
    write.Put("someone else's key", "value");
    REQUIRE((*kv)->Commit(write, /*sync=*/true).ok());
  }
  auto store = OpenLevelDbStore(dir);
  REQUIRE(!store.ok());
  INFO(store.status().ToString());
  REQUIRE(Contains(store.status().message(), "not a upfs store"));
}

TEST_CASE("open: KvStore checks the format record of any Kv", "[store]") {
  SECTION("an empty Kv without create") {
    auto store = KvStore::Open(std::make_unique<MemoryKv>(), std::make_unique<MemoryBlobFiles>(),
                               /*create=*/false);
    REQUIRE(!store.ok());
    REQUIRE(store.status().code() == Status::Code::kInvalidArgument);
  }
  SECTION("a wrong format value") {
    auto kv = std::make_unique<MemoryKv>();
    KvWrite write;
    write.Put(std::string(keys::kFormatKey), "upfs-store 0");
    REQUIRE(kv->Commit(write, false).ok());
    auto store = KvStore::Open(std::move(kv), std::make_unique<MemoryBlobFiles>(), /*create=*/true);
    REQUIRE(!store.ok());
    REQUIRE(store.status().code() == Status::Code::kInvalidArgument);
    REQUIRE(Contains(store.status().message(), "upfs-store 0"));
  }
  SECTION("a right format and no next-id record") {
    auto kv = std::make_unique<MemoryKv>();
    KvWrite write;
    write.Put(std::string(keys::kFormatKey), std::string(keys::kFormatValue));
    REQUIRE(kv->Commit(write, false).ok());
    auto store =
        KvStore::Open(std::move(kv), std::make_unique<MemoryBlobFiles>(), /*create=*/false);
    REQUIRE(!store.ok());
    REQUIRE(store.status().code() == Status::Code::kCorruption);
  }
  SECTION("create writes the record") {
    auto kv = std::make_unique<MemoryKv>();
    MemoryKv* raw = kv.get();
    auto store = KvStore::Open(std::move(kv), std::make_unique<MemoryBlobFiles>(), /*create=*/true);
    REQUIRE(store.ok());
    std::string format;
    REQUIRE(raw->Get(keys::kFormatKey, &format).ok());
    REQUIRE(format == keys::kFormatValue);
  }
}

// Options whose blob files are DirBlobFiles, kept in *blobs for the test.
LevelDbOptions KeepingDirBlobFiles(DirBlobFiles** blobs) {
  LevelDbOptions options;
  options.open_blobs = [blobs](const std::string& path) -> Result<std::unique_ptr<BlobFiles>> {
    auto opened = DirBlobFiles::Open(path);
    if (!opened.ok()) return opened.status();
    *blobs = opened->get();
    return std::unique_ptr<BlobFiles>(std::move(opened).value());
  };
  return options;
}

// Linux reports a failed writeback once: after an fdatasync returned EIO,
// the next one returns 0 although the pages are gone. A blob file whose
// sync failed (in the commit's Sync, or in the background syncer, which
// used to ignore it) counts as lost for the blob's next commit: its
// records are dropped and the commit fails, naming the range.
TEST_CASE("blob files: a failed fdatasync loses the segment for the blob's next commit, once",
          "[store]") {
  TempDir dir;
  DirBlobFiles* blobs = nullptr;
  const LevelDbOptions options = KeepingDirBlobFiles(&blobs);
  auto require_ok = [](const Status& st) {
    INFO(st.ToString());
    REQUIRE(st.ok());
  };
  auto opened = OpenLevelDbStore(dir.Sub("store"), options);
  require_ok(opened.status());
  Store& store = **opened;
  REQUIRE(blobs != nullptr);
  std::mt19937_64 rng(23);
  auto commit_of = [](uint64_t blob, uint64_t length) {
    Batch batch;
    AssetEntry e;
    e.asset = "a" + std::to_string(blob);
    e.name = "f";
    e.id = blob;
    e.length = length;
    batch.Put(e);
    return batch;
  };
  auto extents = [&](uint64_t blob) {
    std::vector<Extent> out;
    require_ok(store.OpenBlob(blob)->Extents(&out));
    return out;
  };
  const uint64_t kBig = 1 << 20;  // beyond the inline chunks: in a blob file

  SECTION("in the commit's own sync") {
    require_ok(store.OpenBlob(100)->WriteAt(0, upfs::testing::RandomBytes(rng, kBig)));
    require_ok(store.OpenBlob(101)->WriteAt(0, upfs::testing::RandomBytes(rng, kBig)));
    blobs->FailSyncsForTest(true);
    Status failed = store.Apply(commit_of(100, kBig), /*sync=*/true);
    blobs->FailSyncsForTest(false);
    INFO(failed.ToString());
    REQUIRE(failed.code() == Status::Code::kIOError);
    CHECK(Contains(failed.message(), "[0, 1099511627776) were lost"));
    CHECK(extents(100).empty());  // its records are gone: it reads as never written
    // Blob 101's file failed too: its own commit finds it, once.
    Status other = store.Apply(commit_of(101, kBig), /*sync=*/true);
    CHECK(other.code() == Status::Code::kIOError);
    CHECK(extents(101).empty());
    require_ok(store.Apply(commit_of(101, kBig), /*sync=*/true));
  }
  SECTION("small files' chunks, in a pack") {
    const std::string a = upfs::testing::RandomBytes(rng, 5000);
    const std::string b = upfs::testing::RandomBytes(rng, 7000);
    require_ok(store.OpenBlob(103)->WriteAt(0, a));
    require_ok(store.OpenBlob(104)->WriteAt(0, b));
    blobs->FailSyncsForTest(true);
    Status failed = store.Apply(commit_of(103, a.size()), /*sync=*/true);
    blobs->FailSyncsForTest(false);
    INFO(failed.ToString());
    REQUIRE(failed.code() == Status::Code::kIOError);
    CHECK(Contains(failed.message(), "blob 103"));
    CHECK(extents(103).empty());
    // The other file in that pack loses its chunk too, at its own commit.
    Status other = store.Apply(commit_of(104, b.size()), /*sync=*/true);
    CHECK(other.code() == Status::Code::kIOError);
    CHECK(extents(104).empty());
    // Sent again, they go to a new pack and commit.
    require_ok(store.OpenBlob(103)->WriteAt(0, a));
    require_ok(store.Apply(commit_of(103, a.size()), /*sync=*/true));
    std::string out(a.size(), '\0');
    require_ok(store.OpenCommittedBlob(103)->ReadAt(0, out.size(), out.data()));
    CHECK(out == a);
  }
  SECTION("in the background, which meets it first") {
    blobs->FailSyncsForTest(true);
    const std::string data = upfs::testing::RandomBytes(rng, DirBlobFiles::kBackgroundSyncBytes);
    require_ok(store.OpenBlob(102)->WriteAt(0, data));
    for (int i = 0; i < 500 && blobs->background_sync_failures() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(blobs->background_sync_failures() > 0);
    blobs->FailSyncsForTest(false);  // the commit's own fdatasync now returns 0, as Linux's would
    Status failed = store.Apply(commit_of(102, data.size()), /*sync=*/true);
    INFO(failed.ToString());
    REQUIRE(failed.code() == Status::Code::kIOError);
    CHECK(Contains(failed.message(), "blob 102"));
    CHECK(extents(102).empty());
  }
}

}  // namespace upfs::store

namespace upfs::store {

// A pack takes every small file's chunk, 64 KiB ones included (a chunk up
// to kInlineChunkEnd): none of those writes may start a writeback of its
// own or have the pack fdatasynced in the background while every writer
// appends to it (each cost the request that met it: docs/performance.md).
// The pack's writeback is started in the background every
// kBackgroundSyncBytes instead.
TEST_CASE("blob files: a pack's writes, 64 KiB ones too, are never synced in the background",
          "[store]") {
  static_assert(kInlineChunkEnd == 64 << 10, "the test writes small files of kInlineChunkEnd");
  TempDir dir;
  DirBlobFiles* blobs = nullptr;
  const LevelDbOptions options = KeepingDirBlobFiles(&blobs);
  auto opened = OpenLevelDbStore(dir.Sub("store"), options);
  REQUIRE(opened.ok());
  Store& store = **opened;
  REQUIRE(blobs != nullptr);
  REQUIRE(blobs->CanPunch());  // packs need a file system that frees ranges
  std::mt19937_64 rng(31);
  const uint64_t kFiles = DirBlobFiles::kBackgroundSyncBytes / kInlineChunkEnd + 20;
  std::vector<std::string> files;
  for (uint64_t i = 0; i < kFiles; ++i) {
    files.push_back(upfs::testing::RandomBytes(rng, kInlineChunkEnd));
    Status st = store.OpenBlob(200 + i)->WriteAt(0, files.back());
    INFO(st.ToString());
    REQUIRE(st.ok());
  }
  for (int i = 0; i < 500 && blobs->background_writebacks() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(blobs->background_writebacks() > 0);
  CHECK(blobs->background_syncs() == 0);
  // In a pack, not in blob files of their own, and intact once committed.
  std::map<uint64_t, uint64_t> stored;
  REQUIRE(blobs->List(&stored).ok());
  CHECK(stored.size() < 3);
  Batch commit;
  for (uint64_t i = 0; i < kFiles; ++i) {
    AssetEntry e;
    e.asset = "a";
    e.name = "f" + std::to_string(i);
    e.id = 200 + i;
    e.length = kInlineChunkEnd;
    commit.Put(e);
  }
  REQUIRE(store.Apply(commit, /*sync=*/true).ok());
  for (uint64_t i : {uint64_t{0}, kFiles / 2, kFiles - 1}) {
    std::string out(kInlineChunkEnd, '\0');
    REQUIRE(store.OpenCommittedBlob(200 + i)->ReadAt(0, out.size(), out.data()).ok());
    CHECK(out == files[i]);
  }
}

}  // namespace upfs::store

namespace upfs::store {

// DirBlobFiles keeps the files it used last open. A blob file removed by
// Truncate must not live on through such an open file: reads then see no
// bytes, and a later write makes a new file, which a reader of the path
// (fsck, a restart) sees.
TEST_CASE("blob files: a removed blob file is not read or written through a kept-open file",
          "[store]") {
  TempDir dir;
  auto opened = DirBlobFiles::Open(dir.Sub("blobs"));
  REQUIRE(opened.ok());
  DirBlobFiles& blobs = **opened;
  auto read = [&](uint64_t blob, size_t n, size_t* present) {
    std::string out(n, 'x');
    REQUIRE(blobs.Read(blob, 0, n, out.data(), present).ok());
    return out;
  };
  auto on_disk = [&](uint64_t blob) {
    std::ifstream in(blobs.PathOf(blob, 0), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string a(5000, 'a'), b(3000, 'b');
  REQUIRE(blobs.WritePack(7, 0, a).ok());
  size_t present = 0;
  CHECK(read(7, a.size(), &present) == a);  // through the kept-open file
  CHECK(present == a.size());
  REQUIRE(blobs.Truncate(7, 0, a.size()).ok());
  CHECK(!std::filesystem::exists(blobs.PathOf(7, 0)));
  CHECK(read(7, a.size(), &present) == std::string(a.size(), '\0'));
  CHECK(present == 0);
  REQUIRE(blobs.Write(7, 0, b).ok());
  CHECK(on_disk(7) == b);
  CHECK(read(7, b.size(), &present) == b);
  // Punch reaches the file on disk too.
  REQUIRE(blobs.Punch(7, 0, 4096).ok());
  CHECK(on_disk(7) == std::string(3000, '\0'));
}

}  // namespace upfs::store
