// EngineFixture: an Engine over a fresh store for one test case, with a
// ManualClock, on the in-memory store or on LevelDB in its own temporary
// directory. Engine tests are TEMPLATE_TEST_CASEs over MemoryBackend and
// LevelDbBackend, so each runs (and is reported by ctest) once per store.
//
// The helpers REQUIRE success, so a test reads as the steps a client takes;
// steps expected to fail call the Engine directly and check the Status.
// Helpers use Catch2 assertions: call them from the test's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "session/clock.h"
#include "session/engine.h"
#include "session/sha256.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "store/memory_kv.h"
#include "tests/session/faulty_store.h"
#include "tests/support/backends.h"
#include "tests/support/losing_blob_files.h"
#include "tests/support/losing_kv.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_dir.h"

namespace Catch {
template <>
struct StringMaker<upfs::session::NodeKind> {
  static std::string convert(upfs::session::NodeKind kind) {
    return std::to_string(static_cast<int>(kind));
  }
};
}  // namespace Catch

namespace upfs::session::testing {

// Engine tests run on the in-memory store and on LevelDB (not on RADOS).
using upfs::testing::Backend;
using upfs::testing::LevelDbBackend;
using upfs::testing::MemoryBackend;

inline constexpr Caller kAlice{1000, 1000};
inline constexpr uint32_t kFileMode = 0644;
inline constexpr uint32_t kDirMode = 0755;

// One line of a sha256sum-format manifest.
inline std::string ManifestLine(std::string_view sha256, std::string_view path) {
  return std::string(sha256) + "  " + std::string(path) + "\n";
}

// The names of a directory listing, in its order.
inline std::vector<std::string> Names(const Result<std::vector<DirEntry>>& entries) {
  REQUIRE_OK(entries);
  std::vector<std::string> out;
  for (const DirEntry& e : *entries) out.push_back(e.name);
  return out;
}

inline bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Options as a daemon has them, but a failed post_commit retried after
// 20 ms instead of a second.
inline Options QuickRetries() {
  Options options;
  options.post_commit_retry_ns = 20'000'000;
  return options;
}

struct FixtureOptions {
  // Wrap the store in a FaultyStore (reachable through faulty()).
  bool faulty = false;
  // The store's blob files lose writes while told to (reachable through
  // losing()).
  bool losing_blobs = false;
  // In-memory store only: records commit "in the background" (as on
  // RADOS) and are lost while told to (reachable through losing_kv()).
  bool losing_records = false;
  int64_t ttl_ns = Options{}.ttl_ns;
  // The engine's own options (hooks, limits, worm, ignore patterns); the
  // clock and ttl_ns above are the fixture's. post_commit retries quickly.
  Options engine = QuickRetries();
};

class EngineFixture {
 public:
  explicit EngineFixture(Backend backend, FixtureOptions options = {})
      : backend_(backend), options_(options), clock_(std::make_shared<ManualClock>()) {
    Open();
  }
  ~EngineFixture() { engine_.reset(); }  // before the temp dir goes

  Engine& engine() { return *engine_; }
  ManualClock& clock() { return *clock_; }
  Backend backend() const { return backend_; }
  // The store under the engine (the FaultyStore when wrapped).
  store::Store& store() { return *store_; }
  // The in-memory blob files, or null on LevelDB.
  store::MemoryBlobFiles* memory_blobs() { return memory_blobs_; }
  upfs::testing::LosingKv& losing_kv() {
    REQUIRE(losing_kv_ != nullptr);
    return *losing_kv_;
  }
  upfs::testing::LosingBlobFiles& losing() {
    REQUIRE(losing_ != nullptr);
    return *losing_;
  }
  FaultyStore& faulty() {
    REQUIRE(faulty_ != nullptr);
    return *faulty_;
  }

  // Destroys the engine and its store, then opens both again from disk, as
  // a restarted daemon would (LevelDB only).
  void Reopen() {
    REQUIRE(backend_ == Backend::kLevelDb);
    engine_.reset();
    store_ = nullptr;
    faulty_ = nullptr;
    losing_ = nullptr;
    Open();
  }

  // ---- sessions and nodes ----

  uint64_t Begin(std::string_view name) {
    auto attr = engine_->Mkdir(kSessionsId, name, kDirMode, kAlice);
    REQUIRE_OK(attr);
    REQUIRE(attr->kind == NodeKind::kSessionRoot);
    return attr->id;
  }
  uint64_t CreateFile(uint64_t parent, std::string_view name) {
    auto attr = engine_->Create(parent, name, kFileMode, kAlice);
    REQUIRE_OK(attr);
    REQUIRE(attr->kind == NodeKind::kFile);
    REQUIRE(attr->size == 0);
    return attr->id;
  }
  uint64_t MakeDir(uint64_t parent, std::string_view name) {
    auto attr = engine_->Mkdir(parent, name, kDirMode, kAlice);
    REQUIRE_OK(attr);
    return attr->id;
  }
  uint64_t Lookup(uint64_t parent, std::string_view name) {
    auto attr = engine_->Lookup(parent, name);
    REQUIRE_OK(attr);
    return attr->id;
  }
  uint64_t Size(uint64_t id) {
    auto attr = engine_->GetAttr(id);
    REQUIRE_OK(attr);
    return attr->size;
  }

  // ---- data ----

  uint64_t OpenWrite(uint64_t id) {
    auto h = engine_->OpenHandle(id, OpenMode{false, true, false});
    REQUIRE_OK(h);
    return h->handle;
  }
  uint64_t OpenRead(uint64_t id) {
    auto h = engine_->OpenHandle(id, OpenMode{true, false, false});
    REQUIRE_OK(h);
    return h->handle;
  }
  void Release(uint64_t id, uint64_t handle) { REQUIRE_OK(engine_->Release(id, handle)); }
  void Write(uint64_t id, uint64_t handle, uint64_t offset, std::string_view data) {
    auto n = engine_->Write(id, handle, offset, data);
    REQUIRE_OK(n);
    REQUIRE(*n == data.size());
  }
  // Opens, writes `data` at `offset`, closes.
  void WriteAt(uint64_t id, uint64_t offset, std::string_view data) {
    uint64_t h = OpenWrite(id);
    Write(id, h, offset, data);
    Release(id, h);
  }
  // Creates `name` in `parent` holding `data`; returns its id.
  uint64_t PutFile(uint64_t parent, std::string_view name, std::string_view data) {
    uint64_t id = CreateFile(parent, name);
    if (!data.empty()) WriteAt(id, 0, data);
    return id;
  }
  // All bytes of a session or asset file, read through a fresh handle in
  // pieces that do not line up with anything.
  std::string ReadAll(uint64_t id) {
    uint64_t size = Size(id);
    uint64_t h = OpenRead(id);
    std::string out;
    constexpr size_t kPiece = 3 * 1000 * 1000 + 7;
    while (out.size() < size) {
      auto piece = engine_->Read(id, h, out.size(), kPiece);
      REQUIRE_OK(piece);
      REQUIRE(!piece->empty());
      out += *piece;
    }
    auto past_end = engine_->Read(id, h, size, 10);
    REQUIRE_OK(past_end);
    REQUIRE(past_end->empty());
    Release(id, h);
    REQUIRE(out.size() == size);
    return out;
  }

  // The store holds no byte of `blob` (a file removed, or left out).
  bool HasNoBytes(uint64_t blob) {
    std::vector<store::Extent> extents;
    REQUIRE_OK(store_->OpenBlob(blob)->Extents(&extents));
    return extents.empty();
  }

  // ---- finishing ----

  // Commits through `.finish` as `sha256sum ... > .finish` would: open for
  // writing, write the manifest, flush (close), release.
  Status FinishViaHandle(uint64_t session_id, std::string_view manifest,
                         CommitInfo* info = nullptr) {
    uint64_t finish = Lookup(session_id, kFinishName);
    REQUIRE(finish == session_id + 1);
    uint64_t h = OpenWrite(finish);
    // Written in two pieces, as a pipe might deliver it.
    size_t half = manifest.size() / 2;
    if (half > 0) Write(finish, h, 0, manifest.substr(0, half));
    if (manifest.size() > half) Write(finish, h, half, manifest.substr(half));
    Status flushed = engine_->Flush(finish, h, info);
    Status released = engine_->Release(finish, h);
    // close(2) reports the commit's result; release repeats it.
    REQUIRE(released.code() == flushed.code());
    return flushed;
  }
  std::string Report(std::string_view session) {
    auto text = engine_->StatusReport(session);
    REQUIRE_OK(text);
    return *text;
  }

  // ---- the committed side ----

  // Id of `path` ("a/b/c") in asset `asset`, walking from assets/.
  uint64_t AssetId(std::string_view asset, std::string_view path) {
    auto root = engine_->Lookup(kAssetsId, asset);
    REQUIRE_OK(root);
    REQUIRE(root->kind == NodeKind::kAssetRoot);
    uint64_t id = root->id;
    while (!path.empty()) {
      size_t slash = path.find('/');
      auto attr = engine_->Lookup(id, path.substr(0, slash));
      REQUIRE_OK(attr);
      REQUIRE(IsCommittedKind(attr->kind));
      id = attr->id;
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    return id;
  }
  std::string AssetSha256(std::string_view asset, std::string_view path) {
    auto sha = engine_->GetXattr(AssetId(asset, path), kSha256Xattr);
    REQUIRE_OK(sha);
    return *sha;
  }
  std::string ReadAsset(std::string_view asset, std::string_view path) {
    uint64_t id = AssetId(asset, path);
    auto attr = engine_->GetAttr(id);
    REQUIRE_OK(attr);
    REQUIRE(attr->kind == NodeKind::kAssetFile);
    return ReadAll(id);
  }
  // Checks asset file `path` holds exactly `data`, by its recorded hash and
  // by reading its bytes back.
  void CheckAssetFile(std::string_view asset, std::string_view path, std::string_view data) {
    CAPTURE(asset, path);
    REQUIRE(AssetSha256(asset, path) == Sha256::Of(data));
    std::string bytes = ReadAsset(asset, path);
    REQUIRE(bytes.size() == data.size());
    REQUIRE(bytes == data);
  }

 private:
  void Open() {
    REQUIRE(backend_ != Backend::kRados);  // engine tests have no cluster
    std::unique_ptr<store::Store> store;
    if (backend_ == Backend::kMemory && options_.losing_records) {
      auto kv = std::make_unique<upfs::testing::LosingKv>();
      losing_kv_ = kv.get();
      auto s = store::KvStore::Open(std::move(kv), std::make_unique<store::MemoryBlobFiles>(),
                                    /*create=*/true);
      REQUIRE_OK(s);
      store = std::move(s).value();
    } else if (backend_ == Backend::kMemory && options_.losing_blobs) {
      auto blobs = std::make_unique<upfs::testing::LosingBlobFiles>();
      losing_ = blobs.get();
      auto s = store::KvStore::Open(std::make_unique<store::MemoryKv>(), std::move(blobs),
                                    /*create=*/true);
      REQUIRE_OK(s);
      store = std::move(s).value();
    } else if (backend_ == Backend::kMemory) {
      auto blobs = std::make_unique<store::MemoryBlobFiles>();
      memory_blobs_ = blobs.get();
      auto s = store::KvStore::Open(std::make_unique<store::MemoryKv>(), std::move(blobs),
                                    /*create=*/true);
      REQUIRE_OK(s);
      store = std::move(s).value();
    } else {
      store::LevelDbOptions leveldb_options;
      if (options_.losing_blobs) {
        leveldb_options.open_blobs =
            [this](const std::string& dir) -> Result<std::unique_ptr<store::BlobFiles>> {
          auto base = store::DirBlobFiles::Open(dir);
          if (!base.ok()) return base.status();
          auto blobs = std::make_unique<upfs::testing::LosingBlobFiles>(std::move(base).value());
          losing_ = blobs.get();
          return std::unique_ptr<store::BlobFiles>(std::move(blobs));
        };
      }
      auto s = store::OpenLevelDbStore(dir_.Sub("store"), leveldb_options);
      REQUIRE_OK(s);
      store = std::move(s).value();
    }
    if (options_.faulty) {
      auto faulty = std::make_unique<FaultyStore>(std::move(store));
      faulty_ = faulty.get();
      store = std::move(faulty);
    }
    store_ = store.get();
    Options options = options_.engine;
    options.ttl_ns = options_.ttl_ns;
    options.clock = clock_;
    auto engine = Engine::Open(std::move(store), options);
    REQUIRE_OK(engine);
    engine_ = std::move(engine).value();
    REQUIRE_OK(engine_->StartPostCommit());
  }

  const Backend backend_;
  const FixtureOptions options_;
  const std::shared_ptr<ManualClock> clock_;
  upfs::testing::TempDir dir_;
  store::Store* store_ = nullptr;                     // owned by engine_
  store::MemoryBlobFiles* memory_blobs_ = nullptr;    // owned by engine_
  FaultyStore* faulty_ = nullptr;                     // owned by engine_
  upfs::testing::LosingBlobFiles* losing_ = nullptr;  // owned by engine_
  upfs::testing::LosingKv* losing_kv_ = nullptr;      // owned by engine_
  std::unique_ptr<Engine> engine_;
};

}  // namespace upfs::session::testing
