// G5 (docs/semantics.md) at the engine level: what the engine itself holds per
// file of an open session stays small, and a file's size costs it nothing.
//
// The engine runs over a DiscardingStore that keeps no records and no
// bytes, so the heap measured (glibc's mallinfo2, every arena) is the
// engine's own: its Node, FileState (extent map, hash state, sink) and
// index entries (docs/performance.md, "Scale and memory", lists them).
// Before the compact per-file state (inline SHA-256, inline single extent,
// no per-file sink or error string) a file cost about 900 bytes and the
// first case failed; it now costs about 590.
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "session/engine.h"
#include "session/sha256.h"

namespace upfs::session {
namespace {

class DiscardingSink : public store::ByteSink {
 public:
  Status WriteAt(uint64_t, std::string_view) override { return Status::OK(); }
  Status ReadAt(uint64_t, size_t n, char* out) const override {
    std::memset(out, 0, n);
    return Status::OK();
  }
  Status Extents(std::vector<store::Extent>* out) const override {
    out->clear();
    return Status::OK();
  }
};

// Accepts everything and keeps nothing: a Store whose memory is constant.
class DiscardingStore : public store::Store {
 public:
  Status Apply(const store::Batch&, bool) override { return Status::OK(); }
  Result<uint64_t> NewIds(uint64_t count) override { return next_.fetch_add(count); }
  std::unique_ptr<store::ByteSink> OpenBlob(uint64_t) override {
    return std::make_unique<DiscardingSink>();
  }
  std::unique_ptr<store::ByteSink> OpenCommittedBlob(uint64_t) override {
    return std::make_unique<DiscardingSink>();
  }
  Status ListSessions(std::vector<store::SessionRecord>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status ListNodes(uint64_t, std::vector<store::NodeRecord>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status GetAsset(std::string_view, store::AssetRecord*) const override {
    return Status::NotFound("no assets");
  }
  Status GetSession(std::string_view, store::SessionRecord*) const override {
    return Status::NotFound("none");
  }
  Status ListAssets(std::vector<store::AssetRecord>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status GetAssetEntry(std::string_view, std::string_view, std::string_view,
                       store::AssetEntry*) const override {
    return Status::NotFound("no assets");
  }
  Status ListAssetDir(std::string_view, std::string_view,
                      std::vector<store::AssetEntry>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status LocateId(uint64_t, store::AssetLocation*) const override {
    return Status::NotFound("no assets");
  }
  Status ListNotices(std::vector<std::string>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status ListAssetEntries(std::string_view, std::vector<store::AssetEntry>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status ListRemovedBlobs(std::vector<uint64_t>* out) const override {
    out->clear();
    return Status::OK();
  }
  Status Compact() override { return Status::OK(); }

 private:
  std::atomic<uint64_t> next_{100};
};

// Bytes in use on the heap now, over all arenas.
int64_t HeapInUse() { return static_cast<int64_t>(mallinfo2().uordblks); }

// Under a sanitizer malloc is the sanitizer's and mallinfo2 does not see
// it (it reads 0): the heap bounds are checked in the plain builds, and
// the sanitizer builds run the same code for its other checks.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kHeapMeasurable = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kHeapMeasurable = false;
#else
constexpr bool kHeapMeasurable = true;
#endif
#else
constexpr bool kHeapMeasurable = true;
#endif

std::unique_ptr<Engine> OpenEngine() {
  auto engine = Engine::Open(std::make_unique<DiscardingStore>(), Options{});
  REQUIRE(engine.ok());
  return std::move(engine).value();
}

uint64_t Begin(Engine& e, const std::string& name) {
  auto dir = e.Mkdir(kSessionsId, name, 0755, {1000, 1000});
  REQUIRE(dir.ok());
  return dir->id;
}

// Creates `name` and writes `data` to it through one handle.
void PutFile(Engine& e, uint64_t parent, const std::string& name, std::string_view data) {
  auto file = e.Create(parent, name, 0644, {1000, 1000});
  REQUIRE(file.ok());
  auto h = e.OpenHandle(file->id, {false, true, false});
  REQUIRE(h.ok());
  auto n = e.Write(file->id, h->handle, 0, data);
  REQUIRE(n.ok());
  REQUIRE(e.Release(file->id, h->handle).ok());
}

TEST_CASE("an open session's files cost the engine a few hundred bytes each", "[memory]") {
  constexpr int kFiles = 10000;
  // About 700 bytes per file of this shape now (590 before the state of
  // hashing after the reply, ~110), about 900 before the compact per-file
  // state; the bound fails the old layout and leaves room.
  constexpr int64_t kMaxBytesPerFile = 800;
  auto engine = OpenEngine();
  uint64_t session = Begin(*engine, "many");
  const std::string data = "file body, hashed as it arrives\n";
  // The first files warm up the engine's tables; measure the rest.
  PutFile(*engine, session, "warm", data);
  int64_t before = HeapInUse();
  for (int i = 0; i < kFiles; ++i)
    PutFile(*engine, session, "f" + std::to_string(i) + ".txt", data);
  int64_t per_file = (HeapInUse() - before) / kFiles;
  INFO("engine heap per file: " << per_file << " bytes");
  WARN("engine heap per file of an open session: " << per_file << " bytes");
  if (kHeapMeasurable) {
    CHECK(per_file > 0);  // the measurement sees the engine's allocations at all
    CHECK(per_file < kMaxBytesPerFile);
  } else {
    WARN("heap bound not checked under a sanitizer");
  }
  // Written in order: every file's hash is known without reading back.
  auto report = engine->StatusReport("many");
  REQUIRE(report.ok());
  CHECK(report->find("sha256: " + Sha256::Of(data)) != std::string::npos);
  CHECK(report->find("sha256: pending") == std::string::npos);
}

TEST_CASE("a file's size costs the engine no memory", "[memory]") {
  auto engine = OpenEngine();
  uint64_t session = Begin(*engine, "big");
  auto file = engine->Create(session, "big", 0644, {1000, 1000});
  REQUIRE(file.ok());
  auto h = engine->OpenHandle(file->id, {false, true, false});
  REQUIRE(h.ok());
  const std::string block(size_t{1} << 20, 'x');
  // One warm-up write, then 256 MiB in order: one range, one hash stream,
  // nothing buffered. (Scattered writes cost one extent per separate range,
  // which is the file's shape, not its size.)
  REQUIRE(engine->Write(file->id, h->handle, 0, block).ok());
  int64_t before = HeapInUse();
  for (uint64_t off = block.size(); off < (uint64_t{256} << 20); off += block.size()) {
    REQUIRE(engine->Write(file->id, h->handle, off, block).ok());
  }
  int64_t in_order = HeapInUse() - before;
  INFO("heap growth over 256 MiB written in order: " << in_order << " bytes");
  if (kHeapMeasurable) CHECK(in_order < 64 * 1024);
  REQUIRE(engine->Release(file->id, h->handle).ok());
}

}  // namespace
}  // namespace upfs::session
