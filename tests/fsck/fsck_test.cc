// store::CheckStore (upfs fsck) against stores built by the session Engine,
// on the in-memory Kv and on LevelDB: a clean store reports nothing, and
// each kind of damage, made directly in the Kv (or in LevelDB's files), is
// reported with its asset, file and offset. Also: a LevelDB block that
// fails its checksum makes a read through the Engine fail, never return
// wrong bytes (G1, docs/semantics.md).
#include "store/fsck.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "session/engine.h"
#include "session/sha256.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/memory_kv.h"
#include "store/records.h"
#include "tests/support/backends.h"
#include "tests/support/random_bytes.h"
#include "tests/support/shared_blob_files.h"
#include "tests/support/shared_kv.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_dir.h"

namespace upfs::store {
namespace {

using session::Engine;
using session::kAssetsId;
using session::kSessionsId;
using Kind = FsckProblemKind;

constexpr session::Caller kAlice{1000, 1000};

class SessionSha256 : public FsckHasher {
 public:
  void Update(std::string_view bytes) override { sha_.Update(bytes); }
  std::string HexDigest() override { return sha_.HexDigest(); }

 private:
  session::Sha256 sha_;
};

using upfs::testing::SharedBlobFiles;
using upfs::testing::SharedKv;

using upfs::testing::Backend;

// A store on one backend, opened either under an Engine (to build it the
// way the daemon does) or bare, offline, for the check.
class TestStore {
 public:
  explicit TestStore(Backend backend) : backend_(backend) {
    if (backend_ == Backend::kMemory) {
      memory_ = std::make_shared<MemoryKv>();
      memory_blobs_ = std::make_shared<MemoryBlobFiles>();
    }
  }

  std::unique_ptr<Engine> OpenEngine() {
    std::unique_ptr<Store> store;
    if (backend_ == Backend::kMemory) {
      auto s = KvStore::Open(std::make_unique<SharedKv>(memory_),
                             std::make_unique<SharedBlobFiles>(memory_blobs_),
                             /*create=*/true);
      REQUIRE_OK(s.status());
      store = std::move(s).value();
    } else {
      auto s = OpenLevelDbStore(dir_.Sub("store"));
      REQUIRE_OK(s.status());
      store = std::move(s).value();
    }
    auto engine = Engine::Open(std::move(store), session::Options{});
    REQUIRE_OK(engine.status());
    return std::move(engine).value();
  }

  // The store without an Engine, as `upfs fsck` opens it.
  std::unique_ptr<KvStore> OpenOffline() {
    std::unique_ptr<Kv> kv;
    std::unique_ptr<BlobFiles> blobs;
    if (backend_ == Backend::kMemory) {
      kv = std::make_unique<SharedKv>(memory_);
      blobs = std::make_unique<SharedBlobFiles>(memory_blobs_);
    } else {
      auto opened = OpenLevelDbKv(dir_.Sub("store") + "/db", /*create=*/false);
      REQUIRE_OK(opened.status());
      kv = std::move(opened).value();
      auto files = DirBlobFiles::Open(blobs_dir());
      REQUIRE_OK(files.status());
      blobs = std::move(files).value();
    }
    auto s = KvStore::Open(std::move(kv), std::move(blobs), /*create=*/false);
    REQUIRE_OK(s.status());
    return std::move(s).value();
  }

  std::string db_dir() const { return dir_.Sub("store") + "/db"; }
  std::string blobs_dir() const { return dir_.Sub("store") + "/blobs"; }

 private:
  Backend backend_;
  testing::TempDir dir_;
  std::shared_ptr<MemoryKv> memory_;
  std::shared_ptr<MemoryBlobFiles> memory_blobs_;
};

// What the fixture commits, and where it landed.
struct Built {
  std::string big;    // assets/up/big.bin: 3 MiB + 5, written in 700 KB pieces
  std::string small;  // assets/up/docs/small.txt
  uint64_t up_root = 0;
  uint64_t big_id = 0;
  uint64_t small_id = 0;
  uint64_t docs_id = 0;
  uint64_t empty_id = 0;
  uint64_t pending_session = 0;  // open session "pending"
  uint64_t pending_file = 0;     // its file part.bin, with a gap
};

constexpr size_t kPiece = 700 * 1000;

void WriteFile(Engine& e, uint64_t id, uint64_t offset, std::string_view data) {
  auto h = e.OpenHandle(id, session::OpenMode{false, true, false});
  REQUIRE_OK(h.status());
  auto n = e.Write(id, h->handle, offset, data);
  REQUIRE_OK(n.status());
  REQUIRE_OK(e.Release(id, h->handle));
}

uint64_t LookupId(Engine& e, uint64_t parent, std::string_view name) {
  auto a = e.Lookup(parent, name);
  REQUIRE_OK(a.status());
  return a->id;
}

// Commits asset "up" (big.bin, docs/small.txt, empty) and leaves session
// "pending" open with a file that has a gap.
Built BuildStore(TestStore& ts) {
  std::mt19937_64 rng(4242);
  Built b;
  b.big = testing::RandomBytes(rng, (size_t{3} << 20) + 5);
  b.small = "a small file\n";
  auto engine = ts.OpenEngine();
  Engine& e = *engine;

  auto root = e.Mkdir(kSessionsId, "up", 0755, kAlice);
  REQUIRE_OK(root.status());
  auto big = e.Create(root->id, "big.bin", 0644, kAlice);
  REQUIRE_OK(big.status());
  // Back to front, so chunks are not written in order.
  std::vector<uint64_t> offsets;
  for (uint64_t off = 0; off < b.big.size(); off += kPiece) offsets.push_back(off);
  std::reverse(offsets.begin(), offsets.end());
  for (uint64_t off : offsets)
    WriteFile(e, big->id, off, std::string_view(b.big).substr(off, kPiece));
  auto docs = e.Mkdir(root->id, "docs", 0755, kAlice);
  REQUIRE_OK(docs.status());
  auto small = e.Create(docs->id, "small.txt", 0644, kAlice);
  REQUIRE_OK(small.status());
  WriteFile(e, small->id, 0, b.small);
  auto empty = e.Create(root->id, "empty", 0644, kAlice);
  REQUIRE_OK(empty.status());
  REQUIRE_OK(e.Finish("up", "", nullptr));

  b.up_root = LookupId(e, kAssetsId, "up");
  b.big_id = LookupId(e, b.up_root, "big.bin");
  b.docs_id = LookupId(e, b.up_root, "docs");
  b.small_id = LookupId(e, b.docs_id, "small.txt");
  b.empty_id = LookupId(e, b.up_root, "empty");
  REQUIRE(b.big_id == big->id);

  auto pending = e.Mkdir(kSessionsId, "pending", 0755, kAlice);
  REQUIRE_OK(pending.status());
  auto part = e.Create(pending->id, "part.bin", 0644, kAlice);
  REQUIRE_OK(part.status());
  WriteFile(e, part->id, 0, "head");
  WriteFile(e, part->id, 100000, "tail");
  b.pending_session = pending->id;
  b.pending_file = part->id;
  return b;
}

FsckReport Check(TestStore& ts, bool remove_orphans = false, size_t window = 4096,
                 size_t batch = 1024) {
  auto store = ts.OpenOffline();
  FsckOptions options;
  options.new_sha256 = [] { return std::make_unique<SessionSha256>(); };
  options.remove_orphans = remove_orphans;
  options.window_records = window;
  options.removal_batch_keys = batch;
  auto report = CheckStore(*store, options);
  REQUIRE_OK(report.status());
  return std::move(report).value();
}

// Every problem and the summary, for INFO.
std::string Text(const FsckReport& r) {
  std::string out;
  for (const FsckProblem& p : r.problems) out += p.ToString() + "\n";
  return out + r.Summary();
}

std::vector<FsckProblem> OfKind(const FsckReport& r, Kind kind) {
  std::vector<FsckProblem> out;
  std::copy_if(r.problems.begin(), r.problems.end(), std::back_inserter(out),
               [&](const FsckProblem& p) { return p.kind == kind; });
  return out;
}

// The offset where the chunk holding byte `offset` of `blob` starts (the
// last one starting at or before it).
uint64_t ChunkStart(Kv& kv, uint64_t blob, uint64_t offset) {
  std::optional<uint64_t> start;
  REQUIRE_OK(kv.Scan(keys::Extent(blob, 0), keys::Extent(blob, offset) + '\0',
                     [&](std::string_view k, std::string_view) {
                       start = keys::OffsetOf(k);
                       return true;
                     }));
  REQUIRE(start);
  return *start;
}

void Put(Kv& kv, std::string key, std::string value) {
  KvWrite w;
  w.Put(std::move(key), std::move(value));
  REQUIRE_OK(kv.Commit(w, true));
}

void Delete(Kv& kv, std::string key) {
  KvWrite w;
  w.Delete(std::move(key));
  REQUIRE_OK(kv.Commit(w, true));
}

std::string Get(Kv& kv, const std::string& key) {
  std::string v;
  REQUIRE_OK(kv.Get(key, &v));
  return v;
}

std::string Length8(uint64_t n) {
  std::string v;
  keys::AppendBigEndian64(&v, n);
  return v;
}

// Bytes of a blob as the blob files hold them (all must be there).
std::string GetBytes(BlobFiles& blobs, uint64_t blob, uint64_t offset, size_t n) {
  std::string v(n, '\0');
  size_t present = 0;
  REQUIRE_OK(blobs.Read(blob, offset, n, v.data(), &present));
  REQUIRE(present == n);
  return v;
}

// Changes stored bytes behind the store's back.
void PutBytes(BlobFiles& blobs, uint64_t blob, uint64_t offset, std::string_view bytes) {
  REQUIRE_OK(blobs.Write(blob, offset, bytes));
  REQUIRE_OK(blobs.Sync());
}

// The length in the extent record of the chunk at `offset`.
uint64_t ChunkLength(Kv& kv, uint64_t blob, uint64_t offset) {
  uint64_t length = 0, checksum = 0;
  std::optional<std::string_view> inline_bytes;
  std::optional<PackedAt> packed;
  REQUIRE(DecodeExtentValue(Get(kv, keys::Extent(blob, offset)), &length, &checksum, &inline_bytes,
                            &packed));
  return length;
}

// The extent record KvStore writes for a chunk holding `bytes`.
std::string ExtentFor(std::string_view bytes) {
  return EncodeExtentValue(bytes.size(), ChunkChecksum(bytes));
}

const std::string& BackendName(Backend b) {
  static const std::string memory = "memory", leveldb = "leveldb";
  return b == Backend::kMemory ? memory : leveldb;
}

}  // namespace

TEST_CASE("fsck: a store built by the engine is clean", "[fsck]") {
  const Backend backend = GENERATE(Backend::kMemory, Backend::kLevelDb);
  // Tiny windows make every window boundary fall inside a blob.
  const size_t window = GENERATE(size_t{4096}, size_t{1}, size_t{2});
  INFO(BackendName(backend) << ", window " << window);
  TestStore ts(backend);
  Built b = BuildStore(ts);
  FsckReport r = Check(ts, false, window);
  INFO(Text(r));
  CHECK(r.problems.empty());
  CHECK(r.clean());
  CHECK(r.assets == 1);
  CHECK(r.asset_files == 3);
  CHECK(r.files_verified == 3);
  CHECK(r.bytes_hashed == b.big.size() + b.small.size());
  CHECK(r.sessions == 1);
  CHECK(r.session_nodes == 1);
  CHECK(r.orphan_blobs == 0);
  // Repairing a clean store changes nothing.
  FsckReport again = Check(ts, true);
  INFO(Text(again));
  CHECK(again.problems.empty());
  CHECK(again.keys_removed == 0);
}

TEST_CASE("fsck: damaged chunks are reported with their file and offset", "[fsck]") {
  const Backend backend = GENERATE(Backend::kMemory, Backend::kLevelDb);
  INFO(BackendName(backend));
  TestStore ts(backend);
  Built b = BuildStore(ts);
  auto store = ts.OpenOffline();
  Kv& kv = *store->kv();
  BlobFiles& blobs = *store->blobs();
  const uint64_t at = 1500000;  // inside the third 700 KB piece
  const uint64_t chunk = ChunkStart(kv, b.big_id, at);
  REQUIRE(chunk == 2 * kPiece);
  const uint64_t last = ChunkStart(kv, b.big_id, b.big.size() - 1);
  const uint64_t last_length = ChunkLength(kv, b.big_id, last);
  REQUIRE(last + last_length == b.big.size());

  SECTION("a flipped byte: the chunk fails the checksum in its extent record") {
    std::string v = GetBytes(blobs, b.big_id, at, 1);
    v[0] ^= 0x20;
    PutBytes(blobs, b.big_id, at, v);
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    const FsckProblem& p = r.problems[0];
    CHECK(p.kind == Kind::kChunkChecksum);
    CHECK(p.asset == "up");
    CHECK(p.path == "big.bin");
    CHECK(p.blob == b.big_id);
    CHECK(p.offset == chunk);  // the per-chunk checksum says where
    CHECK(r.files_verified == 2);
    CHECK_FALSE(r.clean());
    CHECK(p.ToString().rfind("asset up file big.bin offset " + std::to_string(chunk) +
                                 ": chunk checksum mismatch: ",
                             0) == 0);
  }
  SECTION(
      "a flipped byte with its checksum rewritten to match: the file's hash no longer matches") {
    const uint64_t length = ChunkLength(kv, b.big_id, chunk);
    std::string v = GetBytes(blobs, b.big_id, chunk, length);
    v[at - chunk] ^= 0x20;
    PutBytes(blobs, b.big_id, chunk, v);
    Put(kv, keys::Extent(b.big_id, chunk), ExtentFor(v));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    const FsckProblem& p = r.problems[0];
    CHECK(p.kind == Kind::kHashMismatch);
    CHECK(p.path == "big.bin");
    CHECK_FALSE(p.offset.has_value());  // a whole-file hash cannot say where
    CHECK(p.message.find(session::Sha256::Of(b.big)) != std::string::npos);
    CHECK(p.ToString().rfind("asset up file big.bin: hash mismatch: ", 0) == 0);
  }
  SECTION("a blob file cut short: the last extent record says more bytes") {
    REQUIRE_OK(blobs.Truncate(b.big_id, b.big.size() - 10, b.big.size()));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    auto p = OfKind(r, Kind::kExtentLength);
    REQUIRE(p.size() == 1);
    CHECK(p[0].asset == "up");
    CHECK(p[0].path == "big.bin");
    CHECK(p[0].offset == last);
    CHECK(p[0].message.find("holds " + std::to_string(last_length - 10)) != std::string::npos);
    CHECK(OfKind(r, Kind::kHashMismatch).empty());  // explained, not rehashed
    CHECK(r.problems.size() == 1);
  }
  SECTION("a blob file gone: every extent record of it is reported") {
    REQUIRE_OK(blobs.Truncate(b.big_id, 0, b.big.size()));
    store.reset();
    for (size_t window : {4096, 1}) {
      FsckReport r = Check(ts, false, window);
      INFO(Text(r));
      auto missing = OfKind(r, Kind::kExtentWithoutChunk);
      REQUIRE(missing.size() == 5);  // 3 MiB + 5 in 700 KB pieces
      CHECK(r.problems.size() == 5);
      CHECK(missing[2].path == "big.bin");
      CHECK(missing[2].offset == chunk);
      CHECK(r.files_verified == 2);
    }
  }
  SECTION("a deleted extent record: a hole in the file") {
    Delete(kv, keys::Extent(b.big_id, chunk));
    store.reset();
    for (size_t window : {4096, 1}) {
      FsckReport r = Check(ts, false, window);
      INFO(Text(r));
      REQUIRE(r.problems.size() == 1);
      CHECK(r.problems[0].kind == Kind::kMissingExtent);
      CHECK(r.problems[0].asset == "up");
      CHECK(r.problems[0].path == "big.bin");
      CHECK(r.problems[0].offset == chunk);
      CHECK(r.problems[0].message.find("[" + std::to_string(chunk) + ", " +
                                       std::to_string(chunk + kPiece) + ")") != std::string::npos);
      CHECK(r.problems[0].ToString().rfind(
                "asset up file big.bin offset " + std::to_string(chunk) + ": ", 0) == 0);
    }
  }
  SECTION("the last extent record deleted: the file ends short of its length") {
    Delete(kv, keys::Extent(b.big_id, last));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kMissingExtent);
    CHECK(r.problems[0].offset == last);
  }
  SECTION("an overlapping chunk and bytes beyond the length") {
    // Records whose bytes match: only the layout is wrong.
    PutBytes(blobs, b.small_id, 1000, "after the end");
    KvWrite w;
    w.Put(keys::Extent(b.big_id, chunk + 5), ExtentFor(GetBytes(blobs, b.big_id, chunk + 5, 3)));
    w.Put(keys::Extent(b.small_id, 1000), ExtentFor("after the end"));
    w.Put(keys::BlobEnd(b.small_id), EncodeBlobEnd(1000 + 13));
    REQUIRE_OK(kv.Commit(w, true));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    auto overlap = OfKind(r, Kind::kOverlappingExtents);
    REQUIRE(overlap.size() == 1);
    CHECK(overlap[0].path == "big.bin");
    CHECK(overlap[0].offset == chunk + 5);
    auto beyond = OfKind(r, Kind::kBeyondLength);
    REQUIRE(beyond.size() == 1);
    CHECK(beyond[0].path == "docs/small.txt");
    CHECK(beyond[0].offset == 1000);
    CHECK(r.problems.size() == 2);
    CHECK(r.files_verified == 2);  // bytes past the length do not spoil [0, length)
  }
}

TEST_CASE("fsck: damaged index records are reported with their key", "[fsck]") {
  const Backend backend = GENERATE(Backend::kMemory, Backend::kLevelDb);
  INFO(BackendName(backend));
  TestStore ts(backend);
  Built b = BuildStore(ts);
  auto store = ts.OpenOffline();
  Kv& kv = *store->kv();

  SECTION("a garbled entry: reported with its asset and path, its blob still owned") {
    const std::string key = keys::Entry("up", "", "big.bin");
    std::string v = Get(kv, key);
    v[0] = 9;  // not the record format
    Put(kv, key, v);
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    const FsckProblem& p = r.problems[0];
    CHECK(p.kind == Kind::kUndecodable);
    CHECK(p.asset == "up");
    CHECK(p.path == "big.bin");
    CHECK(p.key == "Eup\\x00\\x00big.bin");
    // Its id record still names the entry, so its chunks are not orphans.
    CHECK(r.orphan_blobs == 0);
    // With the index incomplete, removal refuses to guess what is orphaned.
    KvWrite w;
    w.Put(keys::Extent(b.up_root + 1, 0), ExtentFor("stray"));
    auto again = ts.OpenOffline();
    PutBytes(*again->blobs(), b.up_root + 1, 0, "stray");
    REQUIRE_OK(again->kv()->Commit(w, true));
    again.reset();
    FsckReport repair = Check(ts, true);
    INFO(Text(repair));
    CHECK(repair.orphan_blobs == 1);
    CHECK(repair.keys_removed == 0);
    CHECK_FALSE(repair.removal_skipped.empty());
    CHECK(repair.unrepaired() == 2);
  }
  SECTION("removed-file records: empty or a mount's id are sound, other values are not") {
    Put(kv, keys::Removed(b.up_root + 1), "");
    Put(kv, keys::Removed(b.up_root + 2), "0123456789abcdef");
    Put(kv, keys::Removed(b.up_root + 3), "not a mount id");
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kUndecodable);
    CHECK(r.problems[0].key.find("R") == 0);
  }
  SECTION("a commit notice naming the mount that delivers it is sound") {
    Put(kv, keys::Notice("up"), "0123456789abcdef");
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    CHECK(r.problems.empty());
  }
  SECTION("a commit notice holding something else is not") {
    Put(kv, keys::Notice("up"), "not a mount id");
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kUndecodable);
    CHECK(r.problems[0].key.find("P") == 0);
  }
  SECTION("quota grant records: mounts' shares of a uid's limits are sound, others are not") {
    Put(kv, keys::QuotaGrants(1000),
        EncodeQuotaGrants({{"0123456789abcdef", {4096, 1}}, {"00000000000000aa", {0, 2}}}));
    Put(kv, keys::QuotaGrants(1001), "0123456789abcdef");    // no numbers
    Put(kv, keys::QuotaGrants(1002), std::string(32, 'x'));  // not a mount id
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 2);
    for (const auto& p : r.problems) {
      CHECK(p.kind == Kind::kUndecodable);
      CHECK(p.key.find("Q") == 0);
    }
  }
  SECTION("a truncated entry value") {
    const std::string key = keys::Entry("up", "docs", "small.txt");
    std::string v = Get(kv, key);
    v.resize(v.size() / 2);
    Put(kv, key, v);
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kUndecodable);
    CHECK(r.problems[0].path == "docs/small.txt");
  }
  SECTION("a deleted id record, and one naming nothing") {
    Delete(kv, keys::Id(b.small_id));
    Put(kv, keys::Id(b.up_root + 1), EncodeLocation({"up", "", "ghost"}));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 2);
    auto missing = OfKind(r, Kind::kMissingId);
    REQUIRE(missing.size() == 1);
    CHECK(missing[0].asset == "up");
    CHECK(missing[0].path == "docs/small.txt");
    CHECK(missing[0].blob == b.small_id);
    auto dangling = OfKind(r, Kind::kDanglingId);
    REQUIRE(dangling.size() == 1);
    CHECK(dangling[0].blob == b.up_root + 1);
  }
  SECTION("an id record naming another entry") {
    Put(kv, keys::Id(b.small_id), EncodeLocation({"up", "", "big.bin"}));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kIndex);
    CHECK(r.problems[0].blob == b.small_id);
  }
  SECTION("an entry whose parent directory is gone") {
    Delete(kv, keys::Entry("up", "", "docs"));
    Delete(kv, keys::Id(b.docs_id));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kIndex);
    CHECK(r.problems[0].path == "docs/small.txt");
    CHECK(r.problems[0].message.find("parent directory 'docs'") != std::string::npos);
  }
  SECTION("an entry whose asset record is gone") {
    Delete(kv, keys::Asset("up"));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    // Four entries without their asset, and the root's id record now
    // names a location nothing hands out.
    CHECK(OfKind(r, Kind::kIndex).size() == 4);
    CHECK(OfKind(r, Kind::kDanglingId).size() == 1);
  }
  SECTION("a key outside the layout, and a malformed extent key") {
    Put(kv, std::string("Zz\x01", 3), "?");
    Put(kv, keys::ExtentPrefix() + "\x01short", ExtentFor("1"));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    auto bad = OfKind(r, Kind::kUndecodable);
    REQUIRE(bad.size() == 2);
    std::vector<std::string> keys{bad[0].key, bad[1].key};
    std::sort(keys.begin(), keys.end());
    CHECK(keys == std::vector<std::string>{"@\\x01short", "Zz\\x01"});
  }
  SECTION("a blob's end record deleted, or below its chunks") {
    Delete(kv, keys::BlobEnd(b.small_id));
    Put(kv, keys::BlobEnd(b.big_id), EncodeBlobEnd(b.big.size() - 1));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0].kind == Kind::kIndex);
    CHECK(r.problems[0].path == "big.bin");
    CHECK(r.problems[0].message.find("end by " + std::to_string(b.big.size() - 1)) !=
          std::string::npos);
    CHECK(r.problems[1].kind == Kind::kIndex);
    CHECK(r.problems[1].path == "docs/small.txt");
    CHECK(r.problems[1].message.find("no end record") != std::string::npos);
  }
  SECTION("a next-id counter below the ids in use") {
    Put(kv, std::string(keys::kNextIdKey), Length8(b.big_id));
    store.reset();
    FsckReport r = Check(ts);
    INFO(Text(r));
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].kind == Kind::kIndex);
    CHECK(r.problems[0].message.find("next id") != std::string::npos);
  }
}

TEST_CASE("fsck: orphaned chunks are reported and removed on request", "[fsck]") {
  const Backend backend = GENERATE(Backend::kMemory, Backend::kLevelDb);
  INFO(BackendName(backend));
  TestStore ts(backend);
  Built b = BuildStore(ts);
  auto store = ts.OpenOffline();
  Kv& kv = *store->kv();

  // Chunks of a blob no one owns: the id of the committed session's
  // `.finish`, which never holds data. Two with extent records, and bytes
  // past them that no record names.
  const uint64_t stray = b.up_root + 1;
  BlobFiles& blobs = *store->blobs();
  PutBytes(blobs, stray, 4096, std::string(100, 'o'));
  PutBytes(blobs, stray, 8192, std::string(50, 'p'));
  PutBytes(blobs, stray, 9000, std::string(7, 'q'));
  // Bytes of a blob no record names at all (a crash between storing bytes
  // and recording them): the id of the committed session's `.status`.
  const uint64_t unrecorded = b.up_root + 2;
  PutBytes(blobs, unrecorded, 0, std::string(5000, 'u'));
  KvWrite w;
  w.Put(keys::Extent(stray, 4096), ExtentFor(std::string(100, 'o')));
  w.Put(keys::Extent(stray, 8192), ExtentFor(std::string(50, 'p')));
  // A dead session: "pending" lost its session record, so its node record
  // and its file's chunks belong to nothing.
  w.Delete(keys::Session("pending"));
  REQUIRE_OK(kv.Commit(w, true));
  store.reset();

  FsckReport r = Check(ts);

  INFO(Text(r));
  auto orphans = OfKind(r, Kind::kOrphanBlob);
  REQUIRE(orphans.size() == 3);
  CHECK(orphans[0].blob == stray);
  CHECK(orphans[0].offset == 4096);
  CHECK(orphans[0].asset.empty());
  CHECK(orphans[0].message.find("2 chunks, 150 bytes") != std::string::npos);
  CHECK(orphans[0].ToString().rfind("blob " + std::to_string(stray) + " offset 4096: orphan blob: ",
                                    0) == 0);
  CHECK(orphans[1].blob == b.pending_file);
  CHECK(orphans[1].offset == 0);
  CHECK(orphans[2].blob == unrecorded);
  CHECK(orphans[2].message.find("no extent record names") != std::string::npos);
  auto nodes = OfKind(r, Kind::kOrphanNode);
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].blob == b.pending_file);
  CHECK(r.problems.size() == 4);  // nothing else
  CHECK(r.orphan_blobs == 3);
  CHECK_FALSE(r.clean());

  // Removal in small batches, so it takes several writes.
  FsckReport repair = Check(ts, true, 4096, 2);
  INFO(Text(repair));
  CHECK(repair.problems.size() == 4);
  CHECK(repair.clean());
  CHECK(repair.keys_removed == 2 + (2 + 1) + 1);  // the pending file's end record too
  CHECK(repair.removal_skipped.empty());
  {
    // The bytes went too, not only their records.
    auto offline = ts.OpenOffline();
    std::map<uint64_t, uint64_t> stored;
    REQUIRE_OK(offline->blobs()->List(&stored));
    CHECK(stored.count(stray) == 0);
    CHECK(stored.count(unrecorded) == 0);
    CHECK(stored.count(b.pending_file) == 0);
    CHECK(stored.count(b.big_id) == 1);
  }

  FsckReport after = Check(ts);

  INFO(Text(after));
  CHECK(after.problems.empty());
  CHECK(after.files_verified == 3);

  // What is left still opens and reads.
  auto engine = ts.OpenEngine();
  CHECK_FALSE(engine->Lookup(kSessionsId, "pending").ok());
  auto h = engine->OpenHandle(b.big_id, session::OpenMode{});
  REQUIRE_OK(h.status());
  auto bytes = engine->Read(b.big_id, h->handle, 0, b.big.size());
  REQUIRE_OK(bytes.status());
  CHECK(*bytes == b.big);
}

TEST_CASE("fsck: without a hasher it refuses to run", "[fsck]") {
  TestStore ts(Backend::kMemory);
  BuildStore(ts);
  auto store = ts.OpenOffline();
  auto r = CheckStore(*store, FsckOptions{});
  CHECK(r.status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("fsck: EscapeBytes keeps one line printable", "[fsck]") {
  CHECK(EscapeBytes("plain name.txt") == "plain name.txt");
  CHECK(EscapeBytes(std::string("a\nb\0c\\d\xff", 8)) == "a\\x0ab\\x00c\\\\d\\xff");
}

// ---- corruption on disk: a blob file's bytes ----

TEST_CASE("fsck: a blob file damaged on disk fails reads, never returns wrong bytes", "[fsck]") {
  TestStore ts(Backend::kLevelDb);
  Built b = BuildStore(ts);
  const uint64_t at = 1500000;
  const uint64_t chunk = 2 * kPiece;  // the chunk holding byte `at`
  {
    // One byte of the file, flipped with plain file I/O.
    auto files = DirBlobFiles::Open(ts.blobs_dir());
    REQUIRE_OK(files.status());
    std::fstream f((*files)->PathOf(b.big_id, 0), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
    REQUIRE(f.good());
  }

  SECTION("a read through the engine fails with Corruption") {
    auto engine = ts.OpenEngine();
    auto h = engine->OpenHandle(b.big_id, session::OpenMode{});
    REQUIRE_OK(h.status());
    auto bad = engine->Read(b.big_id, h->handle, at, 4096);
    INFO(bad.status().ToString());
    REQUIRE(bad.status().code() == Status::Code::kCorruption);
    // Every read either fails or returns the committed bytes; only those
    // that touch the damaged chunk fail.
    size_t failed = 0;
    for (uint64_t off = 0; off < b.big.size(); off += 128 * 1024) {
      auto piece = engine->Read(b.big_id, h->handle, off, 128 * 1024);
      if (!piece.ok()) {
        ++failed;
        CHECK(piece.status().code() == Status::Code::kCorruption);
        CHECK(off + 128 * 1024 > chunk);
        CHECK(off < chunk + kPiece);
        continue;
      }
      CHECK(*piece == std::string_view(b.big).substr(off, 128 * 1024));
    }
    CHECK(failed > 0);
    // The other files are untouched.
    auto hs = engine->OpenHandle(b.small_id, session::OpenMode{});
    REQUIRE_OK(hs.status());
    auto small = engine->Read(b.small_id, hs->handle, 0, 100);
    REQUIRE_OK(small.status());
    CHECK(*small == b.small);
  }
  SECTION("fsck names the damaged chunk and goes on") {
    for (size_t window : {4096, 1}) {
      FsckReport r = Check(ts, false, window);
      INFO(Text(r));
      auto bad = OfKind(r, Kind::kChunkChecksum);
      REQUIRE(bad.size() == 1);
      CHECK(bad[0].asset == "up");
      CHECK(bad[0].path == "big.bin");
      CHECK(bad[0].offset == chunk);
      // The damaged file is not "verified"; the others are.
      CHECK(r.files_verified == 2);
      CHECK(OfKind(r, Kind::kHashMismatch).empty());
      CHECK(r.problems.size() == 1);
    }
  }
}

}  // namespace upfs::store
