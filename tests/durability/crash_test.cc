// Machine-crash durability of the store and the engine over it (G2 in
// docs/semantics.md; docs/store.md, "Crashes"): with a LevelDB Env that loses every unsynced byte
// (tests/durability/crash_env.h), check that
//   * a session whose Finish returned OK before the crash is an asset after
//     it, every byte hashing to its recorded SHA-256 (G1, G2);
//   * what a crash keeps of everything else is a prefix of the history of
//     operations: no partial commit, no session half-committed, no write
//     surviving while an earlier one was lost, no byte altered;
//   * everything written before a synced commit survives, whichever
//     session it belongs to;
//   * a session the crash left open resumes: write what is missing, finish.
//
// The engine runs single-threaded here, so the order of its store writes is
// the order of the operations below. A crash is simulated, then the engine
// and its store are closed (LevelDB cannot be stopped mid-flight), the
// crash's losses are applied to the files, and the store is reopened with
// LevelDB's default Env, as after a reboot.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "base/status.h"
#include "session/engine.h"
#include "session/sha256.h"
#include "store/blob_files.h"
#include "store/kv_store.h"
#include "store/leveldb_kv.h"
#include "tests/durability/crash_env.h"
#include "tests/support/random_bytes.h"
#include "tests/support/shared_blob_files.h"
#include "tests/support/status_assertions.h"
#include "tests/support/temp_dir.h"

namespace upfs::testing {
namespace {

using session::Engine;
using session::kAssetsId;
using session::kSessionsId;
using session::OpenMode;
using session::Sha256;

constexpr session::Caller kOwner{1000, 1000};

// ---- the workload model ----

struct Chunk {
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct SourceFile {
  std::string name;
  std::string data;
  std::vector<Chunk> chunks;  // disjoint, covering data, in upload order
};

// One upload: what the client means to store, and what the last check
// found stored of it.
struct Upload {
  std::string name;
  std::vector<SourceFile> files;
  // Found by the last check (all empty before the first).
  bool open = false;
  bool committed = false;
  std::vector<bool> file_exists;
  std::vector<std::vector<bool>> chunk_present;

  std::string Manifest() const {
    std::string out;
    for (const SourceFile& f : files) out += Sha256::Of(f.data) + "  " + f.name + "\n";
    return out;
  }
};

// Builds an upload of `file_count` files of random sizes up to
// `max_file_bytes`, cut into chunks of random sizes and shuffled.
Upload MakeUpload(std::mt19937_64& rng, std::string name, int file_count, uint64_t max_file_bytes,
                  uint64_t max_chunk_bytes) {
  Upload u;
  u.name = std::move(name);
  for (int i = 0; i < file_count; ++i) {
    SourceFile f;
    // (Appended rather than "f" + ...: GCC 12's -Wrestrict misfires on
    // literal + std::string at -O3.)
    f.name = "f";
    f.name += std::to_string(i);
    // Now and then an empty file: created, never written.
    uint64_t size = rng() % 8 == 0 ? 0 : 1 + rng() % max_file_bytes;
    f.data = RandomBytes(rng, size);
    // An absent chunk reads as zeros: give every chunk a nonzero first
    // byte so that present and absent always differ.
    for (uint64_t off = 0; off < size;) {
      uint64_t n = std::min<uint64_t>(size - off, 1 + rng() % max_chunk_bytes);
      if (f.data[off] == '\0') f.data[off] = '\x5a';
      f.chunks.push_back({off, n});
      off += n;
    }
    std::shuffle(f.chunks.begin(), f.chunks.end(), rng);
    u.files.push_back(std::move(f));
  }
  u.file_exists.assign(u.files.size(), false);
  for (const SourceFile& f : u.files) u.chunk_present.emplace_back(f.chunks.size(), false);
  return u;
}

// One operation of the history.
struct Op {
  enum Kind { kBegin, kCreate, kWrite, kFinish } kind;
  size_t upload = 0;
  size_t file = 0;
  size_t chunk = 0;
  bool empty_manifest = false;
  // Filled in when it ran: returned OK with the crash not yet happened.
  bool acknowledged_before_crash = false;
};

std::string OpText(const Op& op, const std::vector<Upload>& uploads) {
  const Upload& u = uploads[op.upload];
  switch (op.kind) {
    case Op::kBegin:
      return "begin " + u.name;
    case Op::kCreate:
      return "create " + u.name + "/" + u.files[op.file].name;
    case Op::kWrite: {
      const Chunk& c = u.files[op.file].chunks[op.chunk];
      return "write " + u.name + "/" + u.files[op.file].name + " [" + std::to_string(c.offset) +
             ", " + std::to_string(c.offset + c.size) + ")";
    }
    case Op::kFinish:
      return "finish " + u.name;
  }
  return "?";
}

// The operations that take `u` from its last checked state to committed
// (finish: false stops before the finish).
std::vector<Op> OpsToComplete(const Upload& u, size_t index, bool finish, std::mt19937_64& rng) {
  std::vector<Op> ops;
  if (!u.open) ops.push_back({Op::kBegin, index});
  for (size_t f = 0; f < u.files.size(); ++f) {
    if (!u.file_exists[f]) ops.push_back({Op::kCreate, index, f});
  }
  std::vector<Op> writes;
  for (size_t f = 0; f < u.files.size(); ++f) {
    for (size_t c = 0; c < u.files[f].chunks.size(); ++c) {
      if (!u.chunk_present[f][c]) writes.push_back({Op::kWrite, index, f, c});
    }
  }
  std::shuffle(writes.begin(), writes.end(), rng);
  ops.insert(ops.end(), writes.begin(), writes.end());
  if (finish) {
    Op op{Op::kFinish, index};
    op.empty_manifest = rng() % 2 == 0;
    ops.push_back(op);
  }
  return ops;
}

// Interleaves per-upload queues at random, keeping each queue's order.
std::vector<Op> Interleave(std::vector<std::vector<Op>> queues, std::mt19937_64& rng) {
  std::vector<Op> out;
  std::vector<size_t> next(queues.size(), 0);
  size_t left = 0;
  for (const auto& q : queues) left += q.size();
  while (left > 0) {
    size_t q = rng() % queues.size();
    if (next[q] == queues[q].size()) continue;
    out.push_back(queues[q][next[q]++]);
    --left;
  }
  return out;
}

// ---- the rig: an engine over a LevelDB store in a temporary directory ----

// The blob files under the rig's store: in memory (shared by every open of
// the store), losing what was not synced when the rig's CrashEnv crashed.
class CrashBlobFiles : public SharedBlobFiles {
 public:
  CrashBlobFiles(std::shared_ptr<store::MemoryBlobFiles> files, const CrashEnv* env)
      : SharedBlobFiles(std::move(files)), env_(env) {}
  // After the power went, a sync makes nothing durable.
  Status Sync() override {
    return env_ && env_->crashed() ? Status::OK() : SharedBlobFiles::Sync();
  }

 private:
  const CrashEnv* env_;
};

class CrashRig {
 public:
  explicit CrashRig(bool small_memtable) {
    if (small_memtable) {
      // Memtable switches, flushes, level-0 tables and MANIFEST updates
      // every few writes, so crashes land among them. (64 KiB, LevelDB's
      // smallest, finds the same and takes twice as long.)
      options_.write_buffer_size = 256 << 10;
      options_.max_file_size = 1 << 20;
    }
  }
  ~CrashRig() { engine_.reset(); }  // the store before its Env

  // Opens the store with a fresh CrashEnv.
  void OpenCrashable() {
    REQUIRE(engine_ == nullptr);
    env_ = std::make_unique<CrashEnv>();
    store::LevelDbOptions options = options_;
    options.env = env_.get();
    Open(options);
  }
  // Opens the store with LevelDB's default Env.
  void OpenNormally() {
    REQUIRE(engine_ == nullptr);
    Open(options_);
  }
  // The power goes (if it has not already), the engine and store are
  // closed, and the files are left as a rebooted machine would find them.
  void CrashAndClose() {
    REQUIRE(env_ != nullptr);
    env_->Crash();
    engine_.reset();
    blobs_->DropUnsynced();
    std::string error = env_->DropUnsyncedData();
    INFO(error);
    REQUIRE(error.empty());
    env_.reset();
  }
  void Close() { engine_.reset(); }

  Engine& engine() { return *engine_; }
  // The CrashEnv under the store, or null when opened normally.
  CrashEnv* env() { return env_.get(); }
  const std::string& store_dir() const { return store_dir_; }

 private:
  void Open(store::LevelDbOptions options) {
    options.open_blobs =
        [this, env = options.env](const std::string&) -> Result<std::unique_ptr<store::BlobFiles>> {
      return std::unique_ptr<store::BlobFiles>(
          new CrashBlobFiles(blobs_, static_cast<const CrashEnv*>(env)));
    };
    auto store = store::OpenLevelDbStore(store_dir_, options);
    REQUIRE_OK(store);
    auto engine = Engine::Open(std::move(store).value(), session::Options{});
    REQUIRE_OK(engine);
    engine_ = std::move(engine).value();
  }

  TempDir dir_;
  const std::string store_dir_ = dir_.Sub("store");
  store::LevelDbOptions options_;
  std::unique_ptr<CrashEnv> env_;
  const std::shared_ptr<store::MemoryBlobFiles> blobs_ = std::make_shared<store::MemoryBlobFiles>();
  std::unique_ptr<Engine> engine_;
};

// ---- running operations ----

uint64_t LookupId(Engine& engine, uint64_t parent, std::string_view name) {
  auto attr = engine.Lookup(parent, name);
  REQUIRE_OK(attr);
  return attr->id;
}

// Runs `op`; every operation must succeed (the Env keeps working after the
// crash; it only forgets). `env` is null when the store runs on LevelDB's
// default Env.
void Run(Engine& engine, const CrashEnv* env, std::vector<Upload>& uploads, Op& op) {
  Upload& u = uploads[op.upload];
  INFO(OpText(op, uploads));
  switch (op.kind) {
    case Op::kBegin:
      REQUIRE_OK(engine.Mkdir(kSessionsId, u.name, 0755, kOwner));
      break;
    case Op::kCreate:
      REQUIRE_OK(engine.Create(LookupId(engine, kSessionsId, u.name), u.files[op.file].name, 0644,
                               kOwner));
      break;
    case Op::kWrite: {
      const SourceFile& f = u.files[op.file];
      const Chunk& c = f.chunks[op.chunk];
      uint64_t id = LookupId(engine, LookupId(engine, kSessionsId, u.name), f.name);
      auto h = engine.OpenHandle(id, OpenMode{false, true, false});
      REQUIRE_OK(h);
      auto n =
          engine.Write(id, h->handle, c.offset, std::string_view(f.data).substr(c.offset, c.size));
      REQUIRE_OK(n);
      REQUIRE(*n == c.size);
      REQUIRE_OK(engine.Release(id, h->handle));
      break;
    }
    case Op::kFinish:
      REQUIRE_OK(engine.Finish(u.name, op.empty_manifest ? std::string() : u.Manifest(), nullptr));
      break;
  }
  op.acknowledged_before_crash = env == nullptr || !env->crashed();
}

// All bytes of session or asset file `id`, read through Engine Open/Read in
// pieces that line up with nothing.
std::string ReadAll(Engine& engine, uint64_t id) {
  auto attr = engine.GetAttr(id);
  REQUIRE_OK(attr);
  auto h = engine.OpenHandle(id, OpenMode{true, false, false});
  REQUIRE_OK(h);
  std::string out;
  while (out.size() < attr->size) {
    auto piece = engine.Read(id, h->handle, out.size(), 100003);
    REQUIRE_OK(piece);
    REQUIRE(!piece->empty());
    out += *piece;
  }
  REQUIRE_OK(engine.Release(id, h->handle));
  return out;
}

// The `received:` value of each file block of a .status report.
std::map<std::string, uint64_t> ReceivedByFile(const std::string& report) {
  std::map<std::string, uint64_t> out;
  static const std::regex kBlock("\nfile: ([^\n]*)\nlength: [0-9]+\nreceived: ([0-9]+)\n");
  for (std::sregex_iterator it(report.begin(), report.end(), kBlock), end; it != end; ++it) {
    out[(*it)[1]] = std::stoull((*it)[2]);
  }
  return out;
}

// ---- checking what survived ----

// The chunks of `f` that `bytes` does not hold, for failure messages.
std::string WrongChunks(const SourceFile& f, std::string_view bytes) {
  std::string out;
  for (const Chunk& c : f.chunks) {
    std::string_view want = std::string_view(f.data).substr(c.offset, c.size);
    std::string_view got =
        c.offset < bytes.size() ? bytes.substr(c.offset, c.size) : std::string_view();
    if (got == want) continue;
    out += "[" + std::to_string(c.offset) + ", " + std::to_string(c.offset + c.size) + ")";
    out += got.find_first_not_of('\0') == std::string_view::npos ? " (zeros) " : " (other bytes) ";
  }
  return out.empty() ? "none" : out;
}

// Inspects the reopened engine: fills every upload's found state, checks
// each committed one byte for byte against its source and each open one
// for bytes that are either the source's or absent (read as zeros), and
// checks that nothing unknown appeared. Returns how many uploads are
// committed.
size_t Inspect(Engine& engine, std::vector<Upload>& uploads) {
  std::set<std::string> names;
  for (const Upload& u : uploads) names.insert(u.name);
  auto sessions = engine.ReadDir(kSessionsId);
  REQUIRE_OK(sessions);
  for (const auto& e : *sessions) {
    INFO("session " << e.name);
    REQUIRE(names.count(e.name) == 1);
  }
  auto assets = engine.ReadDir(kAssetsId);
  REQUIRE_OK(assets);
  for (const auto& e : *assets) {
    INFO("asset " << e.name);
    REQUIRE(names.count(e.name) == 1);
  }

  size_t committed = 0;
  for (Upload& u : uploads) {
    INFO("upload " << u.name);
    auto asset = engine.Lookup(kAssetsId, u.name);
    auto open = engine.Lookup(kSessionsId, u.name);
    REQUIRE((asset.ok() || asset.status().IsNotFound()));
    REQUIRE((open.ok() || open.status().IsNotFound()));
    // Never both: a commit moves the session in one atomic write.
    REQUIRE(!(asset.ok() && open.ok()));
    u.committed = asset.ok();
    u.open = open.ok();
    if (u.committed) {
      ++committed;
      auto listing = engine.ReadDir(asset->id);
      REQUIRE_OK(listing);
      REQUIRE(listing->size() == u.files.size());
      for (const SourceFile& f : u.files) {
        INFO("file " << f.name);
        uint64_t id = LookupId(engine, asset->id, f.name);
        auto sha = engine.GetXattr(id, session::kSha256Xattr);
        REQUIRE_OK(sha);
        REQUIRE(*sha == Sha256::Of(f.data));
        std::string bytes = ReadAll(engine, id);
        Sha256 hash;
        hash.Update(bytes);
        INFO("chunks that read back wrong: " << WrongChunks(f, bytes));
        REQUIRE(hash.HexDigest() == *sha);
      }
      for (size_t f = 0; f < u.files.size(); ++f) {
        u.file_exists[f] = true;
        u.chunk_present[f].assign(u.files[f].chunks.size(), true);
      }
      continue;
    }
    std::map<std::string, uint64_t> received;
    if (u.open) {
      auto report = engine.StatusReport(u.name);
      REQUIRE_OK(report);
      received = ReceivedByFile(*report);
    }
    for (size_t fi = 0; fi < u.files.size(); ++fi) {
      const SourceFile& f = u.files[fi];
      INFO("file " << f.name);
      u.file_exists[fi] = false;
      u.chunk_present[fi].assign(f.chunks.size(), false);
      if (!u.open) continue;
      auto attr = engine.Lookup(open->id, f.name);
      REQUIRE((attr.ok() || attr.status().IsNotFound()));
      if (!attr.ok()) continue;
      u.file_exists[fi] = true;
      std::string bytes = ReadAll(engine, attr->id);
      REQUIRE(bytes.size() <= f.data.size());
      uint64_t end = 0, present_bytes = 0;
      for (size_t c = 0; c < f.chunks.size(); ++c) {
        const Chunk& ch = f.chunks[c];
        INFO("chunk [" << ch.offset << ", " << ch.offset + ch.size << ")");
        std::string_view want = std::string_view(f.data).substr(ch.offset, ch.size);
        std::string_view got = ch.offset < bytes.size()
                                   ? std::string_view(bytes).substr(ch.offset, ch.size)
                                   : std::string_view();
        if (got == want) {
          u.chunk_present[fi][c] = true;
          end = std::max(end, ch.offset + ch.size);
          present_bytes += ch.size;
        } else {
          // Absent: every byte of it that the file reaches reads as zero.
          // Anything else is a torn or altered write.
          REQUIRE(got.find_first_not_of('\0') == std::string_view::npos);
        }
      }
      // The length is the end of the furthest surviving write, and
      // .status counts exactly the surviving bytes as received.
      REQUIRE(bytes.size() == end);
      REQUIRE(received.count(f.name) == 1);
      REQUIRE(received[f.name] == present_bytes);
    }
    // A session holds only the files of its upload.
    if (u.open) {
      auto listing = engine.ReadDir(open->id);
      REQUIRE_OK(listing);
      size_t files = std::count(u.file_exists.begin(), u.file_exists.end(), true);
      REQUIRE(listing->size() == files + 2);  // + .finish and .status
    }
  }
  return committed;
}

// Whether `op`'s effect is in the found state.
bool Survived(const Op& op, const std::vector<Upload>& uploads) {
  const Upload& u = uploads[op.upload];
  switch (op.kind) {
    case Op::kBegin:
      return u.open || u.committed;
    case Op::kCreate:
      return u.committed || u.file_exists[op.file];
    case Op::kWrite:
      return u.committed || u.chunk_present[op.file][op.chunk];
    case Op::kFinish:
      return u.committed;
  }
  return false;
}

// Whether `op`'s survival rests on LevelDB alone: every op but a write
// whose bytes go to the blob files (an inline chunk's bytes are in its
// extent record).
bool InKvOnly(const Op& op, const std::vector<Upload>& uploads) {
  if (op.kind != Op::kWrite) return true;
  const Chunk& c = uploads[op.upload].files[op.file].chunks[op.chunk];
  return c.offset + c.size <= store::kInlineChunkEnd;
}

// What survived of `history`: LevelDB's log keeps a prefix of its
// records, so the ops that rest on LevelDB alone survive as a prefix of
// theirs; a write with bytes in the blob files survives only with its
// record, so every such op before it survived too (its own bytes may be
// lost while a later inline write's are not). Everything up to the last
// finish acknowledged before the crash survived (a synced write makes
// every earlier write durable). Returns how many ops survived.
size_t CheckPrefix(const std::vector<Op>& history, const std::vector<Upload>& uploads) {
  size_t durable = 0;  // ops [0, durable) must have survived
  for (size_t i = 0; i < history.size(); ++i) {
    if (history[i].kind == Op::kFinish && history[i].acknowledged_before_crash) durable = i + 1;
  }
  std::optional<size_t> first_lost_kv;  // the first op resting on LevelDB alone that was lost
  size_t survived = 0;
  for (size_t i = 0; i < history.size(); ++i) {
    const bool kept = Survived(history[i], uploads);
    INFO("op " << i << " of " << history.size() << " (" << OpText(history[i], uploads) << ") "
               << (kept ? "survived" : "was lost"));
    if (i < durable) {
      INFO("a finish acknowledged before the crash came after it, at op " << durable - 1);
      REQUIRE(kept);
    }
    if (kept) {
      ++survived;
      INFO("but op " << first_lost_kv.value_or(0) << " ("
                     << (first_lost_kv ? OpText(history[*first_lost_kv], uploads) : "")
                     << "), before it, was lost");
      REQUIRE(!first_lost_kv);
    } else if (InKvOnly(history[i], uploads) && !first_lost_kv) {
      first_lost_kv = i;
    }
  }
  return survived;
}

// What an earlier check found stored (and so was durable before this
// cycle) is still there: committed stays committed, open stays open or
// became committed, and no file or chunk went missing.
void CheckKept(const std::vector<Upload>& before, const std::vector<Upload>& after) {
  for (size_t i = 0; i < before.size(); ++i) {
    const Upload& b = before[i];
    const Upload& a = after[i];
    INFO("upload " << b.name);
    if (b.committed) REQUIRE(a.committed);
    if (b.open) REQUIRE((a.open || a.committed));
    for (size_t f = 0; f < b.files.size(); ++f) {
      INFO("file " << b.files[f].name);
      if (b.file_exists[f]) REQUIRE(a.file_exists[f]);
      for (size_t c = 0; c < b.files[f].chunks.size(); ++c) {
        if (b.chunk_present[f][c]) REQUIRE(a.chunk_present[f][c]);
      }
    }
  }
}

// Writes what is missing of every upload not committed and finishes it;
// all must succeed and verify.
void ResumeAll(Engine& engine, const CrashEnv* env, std::vector<Upload>& uploads,
               std::mt19937_64& rng) {
  for (size_t i = 0; i < uploads.size(); ++i) {
    if (uploads[i].committed) continue;
    for (Op& op : OpsToComplete(uploads[i], i, /*finish=*/true, rng)) Run(engine, env, uploads, op);
  }
}

// ---- the cases ----

TEST_CASE("crash: CrashEnv drops exactly the unsynced writes", "[durability]") {
  TempDir dir;
  std::string db = dir.Sub("db");
  CrashEnv env;
  store::LevelDbOptions options;
  options.env = &env;
  {
    auto kv = store::OpenLevelDbKv(db, /*create=*/true, options);
    REQUIRE_OK(kv);
    store::KvWrite w;
    w.Put("a", "1");
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/false));
    w = {};
    w.Put("b", "2");
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/true));
    w = {};
    w.Put("c", "3");
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/false));
    env.Crash();
    w = {};
    w.Put("d", "4");
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/true));  // after the power went
  }
  REQUIRE(env.DropUnsyncedData().empty());
  auto kv = store::OpenLevelDbKv(db, /*create=*/false);
  REQUIRE_OK(kv);
  std::string value;
  REQUIRE_OK((*kv)->Get("a", &value));
  REQUIRE(value == "1");
  REQUIRE_OK((*kv)->Get("b", &value));
  REQUIRE(value == "2");
  // Without the simulation both would still be there.
  REQUIRE((*kv)->Get("c", &value).IsNotFound());
  REQUIRE((*kv)->Get("d", &value).IsNotFound());
}

// LevelDB syncs only the log file a synced write goes to. When the memtable
// fills, it starts a new log and closes the old one without syncing it;
// until the old memtable's table is flushed and the MANIFEST says so, the
// old log's unsynced tail is all there is of those writes. A synced write
// in that window must still make them durable (store/store.h promises
// it), or a commit could survive a crash while the chunks it names do not.
TEST_CASE("crash: a synced write makes every earlier write durable, across a memtable switch",
          "[durability]") {
  TempDir dir;
  std::string db = dir.Sub("db");
  CrashEnv env;
  store::LevelDbOptions options;
  options.env = &env;
  options.write_buffer_size = 64 << 10;  // LevelDB's smallest
  std::mt19937_64 rng(3);
  const std::string early = RandomBytes(rng, 60 << 10);
  {
    auto kv = store::OpenLevelDbKv(db, /*create=*/true, options);
    REQUIRE_OK(kv);
    // The flush of the memtable that holds "early" cannot complete.
    env.HoldTableFiles(true);
    store::KvWrite w;
    w.Put("early", early);
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/false));
    w = {};
    w.Put("switch", RandomBytes(rng, 10 << 10));  // does not fit: new memtable, new log
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/false));
    w = {};
    w.Put("commit", "1");
    REQUIRE_OK((*kv)->Commit(w, /*sync=*/true));
    env.Crash();  // before the flush could finish
    env.HoldTableFiles(false);
  }
  REQUIRE(env.DropUnsyncedData().empty());
  auto kv = store::OpenLevelDbKv(db, /*create=*/false);
  REQUIRE_OK(kv);
  std::string value;
  REQUIRE_OK((*kv)->Get("commit", &value));
  REQUIRE_OK((*kv)->Get("switch", &value));
  Status early_status = (*kv)->Get("early", &value);
  INFO(early_status.ToString());
  REQUIRE(early_status.ok());
  REQUIRE(value == early);
}

TEST_CASE("crash: a finished session survives a crash, a partial one is all or nothing",
          "[durability]") {
  const bool small_memtable = GENERATE(false, true);
  CAPTURE(small_memtable);
  std::mt19937_64 rng(42 + small_memtable);
  CrashRig rig(small_memtable);
  std::vector<Upload> uploads;
  uploads.push_back(MakeUpload(rng, "A", 3, 3 << 20, 1 << 20));
  uploads.push_back(MakeUpload(rng, "B", 3, 1 << 20, 200 << 10));
  rig.OpenCrashable();
  std::vector<Op> history = OpsToComplete(uploads[0], 0, /*finish=*/true, rng);
  const size_t finish_a = history.size() - 1;
  std::vector<Op> b = OpsToComplete(uploads[1], 1, /*finish=*/false, rng);
  b.resize(b.size() - b.size() / 3);  // B stops part way
  history.insert(history.end(), b.begin(), b.end());
  for (Op& op : history) Run(rig.engine(), rig.env(), uploads, op);
  REQUIRE(history[finish_a].kind == Op::kFinish);
  REQUIRE(history[finish_a].acknowledged_before_crash);
  rig.CrashAndClose();

  rig.OpenNormally();
  Inspect(rig.engine(), uploads);
  REQUIRE(uploads[0].committed);
  REQUIRE(!uploads[1].committed);
  size_t prefix = CheckPrefix(history, uploads);
  if (!small_memtable) {
    // Nothing of B was synced and no memtable flush persisted it: B is
    // gone entirely.
    REQUIRE(!uploads[1].open);
  }
  UNSCOPED_INFO("ops that survived: " << prefix << " of " << history.size());

  ResumeAll(rig.engine(), rig.env(), uploads, rng);
  REQUIRE(Inspect(rig.engine(), uploads) == uploads.size());
}

TEST_CASE("crash: every write before a synced commit survives, whoever wrote it", "[durability]") {
  const bool small_memtable = GENERATE(false, true);
  CAPTURE(small_memtable);
  std::mt19937_64 rng(7 + small_memtable);
  CrashRig rig(small_memtable);
  std::vector<Upload> uploads;
  uploads.push_back(MakeUpload(rng, "many", 4, 2 << 20, 64 << 10));  // many small unsynced writes
  uploads.push_back(MakeUpload(rng, "small", 1, 100 << 10, 100 << 10));
  uploads.push_back(MakeUpload(rng, "late", 2, 500 << 10, 64 << 10));
  rig.OpenCrashable();
  std::vector<Op> many = OpsToComplete(uploads[0], 0, /*finish=*/false, rng);
  std::vector<Op> history(many.begin(), many.begin() + many.size() / 2);
  auto small = OpsToComplete(uploads[1], 1, /*finish=*/true, rng);
  history.insert(history.end(), small.begin(), small.end());
  const size_t commit_at = history.size() - 1;
  history.insert(history.end(), many.begin() + many.size() / 2, many.end());
  auto late = OpsToComplete(uploads[2], 2, /*finish=*/false, rng);
  history.insert(history.end(), late.begin(), late.end());
  for (Op& op : history) Run(rig.engine(), rig.env(), uploads, op);
  REQUIRE(history[commit_at].kind == Op::kFinish);
  REQUIRE(history[commit_at].acknowledged_before_crash);
  rig.CrashAndClose();

  rig.OpenNormally();
  Inspect(rig.engine(), uploads);
  REQUIRE(uploads[1].committed);
  REQUIRE(uploads[0].open);
  for (size_t i = 0; i < commit_at; ++i) {
    INFO(OpText(history[i], uploads));
    REQUIRE(Survived(history[i], uploads));
  }
  CheckPrefix(history, uploads);
  ResumeAll(rig.engine(), rig.env(), uploads, rng);
  REQUIRE(Inspect(rig.engine(), uploads) == uploads.size());
}

// Several crash-and-recover cycles on one store, each crash at a random
// point: sometimes between two operations, mostly at a random file event
// inside one (or inside LevelDB's background work it set off). Each cycle
// starts new uploads and resumes the ones earlier crashes left open.
TEST_CASE("crash: at random points, acknowledged commits survive and the rest is a prefix",
          "[durability]") {
  const uint64_t seed = GENERATE(range(1, 13));
  const bool small_memtable = seed % 2 == 0;
  CAPTURE(seed, small_memtable);
  std::mt19937_64 rng(seed);
  CrashRig rig(small_memtable);
  std::vector<Upload> uploads;
  constexpr int kCycles = 4;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    CAPTURE(cycle);
    std::vector<std::vector<Op>> queues;
    // Resume what earlier crashes left (finishing some of them).
    for (size_t i = 0; i < uploads.size(); ++i) {
      if (!uploads[i].committed)
        queues.push_back(OpsToComplete(uploads[i], i, rng() % 3 != 0, rng));
    }
    int fresh = 2 + static_cast<int>(rng() % 3);
    for (int n = 0; n < fresh; ++n) {
      std::string name = "c";
      name += std::to_string(cycle);
      name += "u";
      name += std::to_string(n);
      uploads.push_back(
          MakeUpload(rng, name, 1 + static_cast<int>(rng() % 3), 600 << 10, 150 << 10));
      queues.push_back(OpsToComplete(uploads.back(), uploads.size() - 1, rng() % 3 != 0, rng));
    }
    std::vector<Op> history = Interleave(std::move(queues), rng);
    const size_t crash_op = rng() % (history.size() + 1);
    const bool between_ops = rng() % 4 == 0;
    const uint64_t crash_event = 1 + rng() % 12;
    CAPTURE(history.size(), crash_op, between_ops, crash_event);

    const std::vector<Upload> before = uploads;
    rig.OpenCrashable();
    for (size_t i = 0; i < history.size(); ++i) {
      if (i == crash_op) {
        if (between_ops) {
          rig.env()->Crash();
        } else {
          rig.env()->CrashAfter(crash_event);
        }
      }
      Run(rig.engine(), rig.env(), uploads, history[i]);
    }
    rig.CrashAndClose();

    rig.OpenNormally();
    size_t committed = Inspect(rig.engine(), uploads);
    CheckKept(before, uploads);
    size_t prefix = CheckPrefix(history, uploads);
    UNSCOPED_INFO("seed " << seed << " cycle " << cycle << ": " << prefix << " of "
                          << history.size() << " ops survived, " << committed << " of "
                          << uploads.size() << " uploads committed");
    rig.Close();
  }
  // Finally, with no crash: everything resumes and commits.
  rig.OpenCrashable();
  ResumeAll(rig.engine(), rig.env(), uploads, rng);
  rig.Close();
  rig.OpenNormally();
  REQUIRE(Inspect(rig.engine(), uploads) == uploads.size());
}

}  // namespace
}  // namespace upfs::testing
