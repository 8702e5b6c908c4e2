// Speed does not decay with age (G6, docs/semantics.md; docs/store.md): each operation of
// an upload (create, write, overwrite, read, truncate, rename, finish, a
// read of the committed file) makes as many key comparisons on a store
// that committed or aborted many sessions as on a fresh one. Comparisons
// count the work LevelDB hides: an iterator steps over every deleted key
// between where it seeks and the next live key, so a seek that leaves a
// blob's own keys walks the deleted records of every session before it.
// Not timed: Kv::ThreadKeyComparisons counts the work itself.
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store/kv_store.h"
#include "tests/store/store_fixture.h"
#include "tests/support/random_bytes.h"
#include "tests/support/status_assertions.h"

namespace upfs::store::testing {
namespace {

using upfs::testing::RandomBytes;

constexpr int kHistorySessions = 20;
constexpr int kFilesPerSession = 100;
constexpr size_t kFileBytes = 4096;
constexpr size_t kUploadBytes = 24 << 10;

// One session of `files` files as the engine stores it: its record, a node
// record per file (written at create), each file's bytes, then the commit
// (asset and entries in; nodes and session out) or the abort (all out).
void AddSession(Store& store, std::mt19937_64& rng, bool commit) {
  SessionRecord session;
  session.id = store.NewIds(1 + kFilesPerSession).value();
  session.name = "history-" + std::to_string(session.id);
  Batch begin;
  begin.Put(session);
  REQUIRE_OK(store.Apply(begin, false));
  Batch end;
  AssetRecord asset;
  asset.name = session.name;
  asset.root_id = session.id;
  end.Put(asset);
  for (uint64_t id = session.id + 1; id <= session.id + kFilesPerSession; ++id) {
    NodeRecord node;
    node.id = id;
    node.parent = session.id;
    node.name = "f" + std::to_string(id);
    Batch create;
    create.Put(session.id, node);
    REQUIRE_OK(store.Apply(create, false));
    REQUIRE_OK(store.OpenBlob(id)->WriteAt(0, RandomBytes(rng, kFileBytes)));
    end.DeleteNodeRecord(session.id, id);
    if (commit) {
      AssetEntry entry;
      entry.asset = session.name;
      entry.name = node.name;
      entry.id = id;
      entry.length = kFileBytes;
      end.Put(entry);
    } else {
      end.DeleteBlobData(id);
    }
  }
  end.Delete(session);
  REQUIRE_OK(
      store.Apply(end, /*sync=*/false));  // the daemon syncs a commit; irrelevant here, and slow
}

// The operations of a one-file upload, each with the key comparisons it
// made. The file may be created (Begin) long before the rest (Finish).
class Upload {
 public:
  Upload(StoreFixture& fx, std::mt19937_64& rng) : fx_(fx), rng_(rng) {}

  void Begin() {
    session_.id = fx_.store().NewIds(2).value();
    session_.name = "upload-" + std::to_string(session_.id);
    node_.id = session_.id + 1;
    node_.parent = session_.id;
    node_.name = "big.bin";
    Measure("mkdir", [&] {
      Batch b;
      b.Put(session_);
      REQUIRE_OK(fx_.store().Apply(b, false));
    });
    Measure("create", [&] { PutNode(); });
    Measure("write", [&] { REQUIRE_OK(Blob()->WriteAt(0, RandomBytes(rng_, kUploadBytes))); });
  }

  void Finish() {
    Measure("append",
            [&] { REQUIRE_OK(Blob()->WriteAt(kUploadBytes, RandomBytes(rng_, kUploadBytes))); });
    Measure("overwrite", [&] { REQUIRE_OK(Blob()->WriteAt(1000, RandomBytes(rng_, 5000))); });
    std::string out(2 * kUploadBytes, '\0');
    Measure("read", [&] { REQUIRE_OK(Blob()->ReadAt(0, out.size(), out.data())); });
    std::vector<Extent> extents;
    Measure("extents", [&] { REQUIRE_OK(Blob()->Extents(&extents)); });
    Measure("truncate", [&] {
      Batch b;
      b.Truncate(node_.id, kUploadBytes + 100);
      node_.length = kUploadBytes + 100;
      b.Put(session_.id, node_);
      REQUIRE_OK(fx_.store().Apply(b, false));
    });
    Measure("rename", [&] {
      node_.name = "final.bin";
      PutNode();
    });
    Measure("finish", [&] {
      Batch b;
      AssetRecord asset;
      asset.name = session_.name;
      asset.root_id = session_.id;
      b.Put(asset);
      AssetEntry entry;
      entry.asset = session_.name;
      entry.name = node_.name;
      entry.id = node_.id;
      entry.length = node_.length;
      b.Put(entry);
      b.DeleteNodeRecord(session_.id, node_.id);
      b.Delete(session_);
      REQUIRE_OK(fx_.store().Apply(b, true));
    });
    Measure("read committed", [&] {
      REQUIRE_OK(fx_.store().OpenCommittedBlob(node_.id)->ReadAt(0, node_.length, out.data()));
    });
  }

  const std::map<std::string, uint64_t>& comparisons() const { return comparisons_; }

 private:
  template <typename Op>
  void Measure(const std::string& name, Op op) {
    const uint64_t before = fx_.kv().ThreadKeyComparisons();
    op();
    comparisons_[name] = fx_.kv().ThreadKeyComparisons() - before;
  }
  void PutNode() {
    Batch b;
    b.Put(session_.id, node_);
    REQUIRE_OK(fx_.store().Apply(b, false));
  }
  std::unique_ptr<ByteSink> Blob() { return fx_.store().OpenBlob(node_.id); }

  StoreFixture& fx_;
  std::mt19937_64& rng_;
  SessionRecord session_;
  NodeRecord node_;
  std::map<std::string, uint64_t> comparisons_;
};

enum class History { kCommitted, kAborted, kBoth };

const char* HistoryName(History h) {
  return h == History::kCommitted ? "committed"
         : h == History::kAborted ? "aborted"
                                  : "committed and aborted";
}

void AddHistory(StoreFixture& fx, std::mt19937_64& rng, History history) {
  for (int i = 0; i < kHistorySessions; ++i) {
    bool commit = history == History::kCommitted || (history == History::kBoth && i % 2 == 0);
    AddSession(fx.store(), rng, commit);
  }
}

// Each operation on the aged store may cost a little more than on the
// fresh one, since a lookup costs a few comparisons per doubling of the
// keys held (the history adds some 10 000), but never in proportion to the
// history: a walk over its deleted keys is thousands of comparisons (one
// 24 KiB write that stepped out of its blob's keys made 18 000 to 390 000).
void RequireSameWork(const std::map<std::string, uint64_t>& fresh,
                     const std::map<std::string, uint64_t>& aged) {
  REQUIRE(fresh.size() == aged.size());
  for (const auto& [op, cost] : fresh) {
    const uint64_t bound = 4 * cost + 128;
    INFO(op << ": " << cost << " key comparisons on a fresh store, " << aged.at(op) << " after "
            << kHistorySessions << " sessions of " << kFilesPerSession << " files (bound " << bound
            << ")");
    CHECK(aged.at(op) <= bound);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("history: an upload costs the same after many committed or aborted sessions",
                   "[store][history]", MemoryBackend, LevelDbBackend) {
  const auto history = GENERATE(History::kCommitted, History::kAborted, History::kBoth);
  // The file begun before the history: its blob's keys sort before the
  // history's deleted ones, which then lie after it, not before.
  const bool begun_before = GENERATE(false, true);
  const bool reopen = GENERATE(false, true);
  if (reopen && TestType::kBackend != Backend::kLevelDb) return;  // nothing outlives a MemoryKv
  INFO(kHistorySessions << " sessions " << HistoryName(history) << "; the file begun before them: "
                        << begun_before << "; reopened after them: " << reopen);
  std::mt19937_64 rng(11);

  StoreFixture fresh_fx(TestType::kBackend, LevelDbBlobs::kMemory);
  Upload fresh(fresh_fx, rng);
  fresh.Begin();
  fresh.Finish();

  StoreFixture aged_fx(TestType::kBackend, LevelDbBlobs::kMemory);
  Upload aged(aged_fx, rng);
  if (begun_before) aged.Begin();
  AddHistory(aged_fx, rng, history);
  // After a restart the deleted keys sit in tables, not yet compacted.
  if (reopen) aged_fx.Reopen();
  if (!begun_before) aged.Begin();
  aged.Finish();

  RequireSameWork(fresh.comparisons(), aged.comparisons());
}

}  // namespace upfs::store::testing
