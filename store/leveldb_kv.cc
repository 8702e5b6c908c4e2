#include "store/leveldb_kv.h"

#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <system_error>

#include <leveldb/cache.h>
#include <leveldb/comparator.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/write_batch.h>
#include <spdlog/spdlog.h>

#include "base/mutex.h"
#include "store/leveldb_env.h"

namespace upfs::store {
namespace {

// leveldb::Status becomes a upfs Status here and nowhere else.
Status FromLevelDb(const leveldb::Status& s, std::string_view what) {
  if (s.ok()) return Status::OK();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (msg.find("No space left on device") != std::string::npos) return Status::NoSpace(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

leveldb::Slice ToSlice(std::string_view s) { return leveldb::Slice(s.data(), s.size()); }
std::string_view ToView(const leveldb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Key comparisons made by each thread in any LevelDbKv
// (Kv::ThreadKeyComparisons).
thread_local uint64_t thread_key_comparisons = 0;

// LevelDB's bytewise key order, under its name (so every existing
// database opens), counting each thread's comparisons: they measure the
// work of seeks and iterations, including the deleted keys an iterator
// steps over without returning them.
class CountingComparator : public leveldb::Comparator {
 public:
  int Compare(const leveldb::Slice& a, const leveldb::Slice& b) const override {
    ++thread_key_comparisons;
    return base_->Compare(a, b);
  }
  const char* Name() const override { return base_->Name(); }
  void FindShortestSeparator(std::string* start, const leveldb::Slice& limit) const override {
    base_->FindShortestSeparator(start, limit);
  }
  void FindShortSuccessor(std::string* key) const override { base_->FindShortSuccessor(key); }

 private:
  const leveldb::Comparator* const base_ = leveldb::BytewiseComparator();
};

// Why: LevelDB fsyncs only the log a synced write goes to. When a memtable
// fills, it starts a new log and drops the old one unsynced (1.23 deletes
// it without even Close()); until the full memtable is flushed to a table
// and the MANIFEST records it, the old log's unsynced tail is the only
// copy of its writes. A synced commit in that window would survive a
// machine crash while the unsynced chunk writes before it did not: an
// asset whose bytes read as zeros. Syncing each log when LevelDB is done
// with it (once per memtable, so cheap) keeps the promise of
// store/store.h: a synced Apply makes every earlier write durable.
// tests/durability/crash_test.cc reproduces the crash.
class SyncDoneLogsEnv : public leveldb::EnvWrapper {
 public:
  explicit SyncDoneLogsEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override {
    leveldb::Status s = target()->NewWritableFile(fname, result);
    if (s.ok() && IsLog(fname)) *result = new SyncWhenDoneFile(this, *result);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override {
    leveldb::Status s = target()->NewAppendableFile(fname, result);
    if (s.ok() && IsLog(fname)) *result = new SyncWhenDoneFile(this, *result);
    return s;
  }

  // OK, or the first failure to sync a log LevelDB was done with. Sticky:
  // those writes may never become durable, so no later synced write may
  // claim they are.
  leveldb::Status log_sync_error() const {
    MutexLock lock(mu_);
    return error_;
  }

 private:
  // A log file synced when closed or, unclosed, destroyed.
  class SyncWhenDoneFile : public leveldb::WritableFile {
   public:
    SyncWhenDoneFile(SyncDoneLogsEnv* env, leveldb::WritableFile* file) : env_(env), file_(file) {}
    ~SyncWhenDoneFile() override {
      if (!closed_) env_->Record(file_->Sync());
    }
    leveldb::Status Append(const leveldb::Slice& data) override { return file_->Append(data); }
    leveldb::Status Close() override {
      closed_ = true;
      leveldb::Status synced = file_->Sync();
      env_->Record(synced);
      leveldb::Status s = file_->Close();
      return synced.ok() ? s : synced;
    }
    leveldb::Status Flush() override { return file_->Flush(); }
    leveldb::Status Sync() override { return file_->Sync(); }

   private:
    SyncDoneLogsEnv* const env_;
    const std::unique_ptr<leveldb::WritableFile> file_;
    bool closed_ = false;
  };

  static bool IsLog(const std::string& fname) {
    return fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".log") == 0;
  }
  void Record(const leveldb::Status& s) {
    MutexLock lock(mu_);
    if (error_.ok() && !s.ok()) error_ = s;
  }

  mutable Mutex mu_;
  leveldb::Status error_ GUARDED_BY(mu_);
};

// Free bytes for unprivileged users on the file system holding `dir`.
Result<uint64_t> StatvfsFreeBytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) {
    return Status::IOError("statvfs " + dir + ": " + std::strerror(errno));
  }
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// The LevelDB Kv, and what keeps it writable when the disk fills.
//
// Why: LevelDB 1.23 makes a failed background flush or compaction sticky
// (every later write fails until the DB is reopened), and a failed log
// append leaves a torn record at the log's tail that later records would
// strand in mid-log, where recovery (paranoid_checks) refuses it. So a
// failed write marks the DB failed, no further write reaches it, and the
// next write reopens it once the file system has room for the recovery:
// recovery drops the torn tail, replays the log and clears the error,
// with no restart of the daemon. Upload data is also refused while free
// space is below the reserve (CheckRoomForData), so in normal operation
// LevelDB always has room to flush and compact and never fails at all.
//
// Lock order: write_mu_, then db_mu_ (then LevelDB's own). db_mu_ is held
// shared by every call into db_ and exclusively only to swap db_.
class LevelDbKv : public Kv {
 public:
  LevelDbKv(std::string db_dir, const LevelDbOptions& opts)
      : db_dir_(std::move(db_dir)),
        opts_(opts),
        // An injected Env (tests) is used as given, reads included.
        base_env_(opts.env != nullptr ? nullptr
                                      : std::make_unique<BoundedEnv>(leveldb::Env::Default())),
        cache_(leveldb::NewLRUCache(opts.block_cache_bytes)),
        free_bytes_(opts.free_bytes ? opts.free_bytes
                                    : [dir = db_dir_] { return StatvfsFreeBytes(dir); }) {}

  ~LevelDbKv() override { db_.reset(); }  // the DB before its Env and cache

  // The first open, before any other thread has the object (the lock is
  // uncontended; it is taken because OpenDb requires it).
  leveldb::Status FirstOpen(bool create) EXCLUDES(db_mu_) {
    WriterLock lock(db_mu_);
    return OpenDb(create);
  }

  // Opens the database (first open or reopen). No db_ before.
  leveldb::Status OpenDb(bool create) REQUIRES(db_mu_) {
    leveldb::Options options;
    options.create_if_missing = create;
    options.paranoid_checks = true;
    options.comparator = &comparator_;
    options.write_buffer_size = opts_.write_buffer_size;
    options.max_file_size = opts_.max_file_size;
    options.block_size = opts_.block_size;
    // Upload bytes are mostly compressed media already; snappy would cost
    // CPU on every chunk for little gain.
    options.compression = leveldb::kNoCompression;
    options.block_cache = cache_.get();
    // No Bloom filter: every open table keeps its whole filter block in
    // memory, outside the block cache, and with small files' bytes inline
    // the tables hold gigabytes. A filter block has 4 bytes per 2 KiB of
    // table plus 10 bits per key (a table of records has hundreds of
    // thousands), so up to 1000 open tables of 64 MiB held hundreds of
    // MiB: the soak's RSS grew by 4 MiB a minute with the tables, with no
    // plateau in sight. What a filter saves is a block read for a key
    // that is absent (a new file's end record, a new session's name), and
    // those keys sort among the newest ones, whose blocks are cached.
    // Table files stay open for reading (pread, not mmap: see
    // store/leveldb_env.h): at most max_open_tables, and never more than
    // half the descriptors (the rest are FUSE's and the blob files').
    // LevelDB counts 10 descriptors for its logs and MANIFEST in the limit.
    rlim_t files = rlim_t(opts_.max_open_tables) + 10;
    rlimit nofile{};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
      files = std::min(files, std::max<rlim_t>(nofile.rlim_cur / 2, 64));
    }
    options.max_open_files = static_cast<int>(files);
    // A fresh wrapper per open: a log-sync error of the failed instance
    // must not fail the recovered one (its logs were replayed and synced
    // into tables by the reopen).
    env_ = std::make_unique<SyncDoneLogsEnv>(opts_.env != nullptr ? opts_.env : base_env_.get());
    options.env = env_.get();
    leveldb::DB* raw = nullptr;
    leveldb::Status s = leveldb::DB::Open(options, db_dir_, &raw);
    db_.reset(raw);
    return s;
  }

  Status Get(std::string_view key, std::string* value) const override {
    ReaderLock lock(db_mu_);
    UPFS_RETURN_IF_ERROR(CheckOpen());
    return FromLevelDb(db_->Get(ReadOptions(), ToSlice(key), value), "get");
  }

  Status Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const override {
    ReaderLock lock(db_mu_);
    UPFS_RETURN_IF_ERROR(CheckOpen());
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ReadOptions()));
    for (it->Seek(ToSlice(begin)); it->Valid(); it->Next()) {
      std::string_view key = ToView(it->key());
      if (key >= end) break;
      if (!visit(key, ToView(it->value()))) break;
    }
    return FromLevelDb(it->status(), "scan");
  }

  Status Commit(const KvWrite& write, bool sync) override {
    leveldb::WriteBatch batch;
    for (const auto& [key, value] : write.ops) {
      if (value) {
        batch.Put(ToSlice(key), ToSlice(*value));
      } else {
        batch.Delete(ToSlice(key));
      }
    }
    leveldb::WriteOptions options;
    options.sync = sync;
    const char* what = sync ? "synced write" : "write";
    MutexLock lock(write_mu_);
    UPFS_RETURN_IF_ERROR(RecoverIfFailed());
    Status st = WriteLocked(options, &batch, what);
    if (!st.ok() && !failed_.ok()) {
      // The failure may be a sticky one that a reopen clears right away
      // (a background error from before the space was freed): one retry.
      // The failed write left nothing behind: LevelDB recovery drops a torn
      // log tail, and a sticky error stops a write before its log append.
      if (RecoverIfFailed().ok()) st = WriteLocked(options, &batch, what);
    }
    UPFS_RETURN_IF_ERROR(st);
    if (sync) {
      ReaderLock db_lock(db_mu_);
      return FromLevelDb(env_->log_sync_error(), "syncing a finished write-ahead log");
    }
    return Status::OK();
  }

  Status Compact(std::string_view begin, std::string_view last) override {
    leveldb::Slice b = ToSlice(begin), e = ToSlice(last);
    // CompactRange flushes the memtable, then merges each level holding the
    // range into the next one down, but never rewrites the deepest level
    // that holds it. Keys written and deleted within one memtable (a
    // session that expired or was aborted soon after its writes) reach a
    // table together, often at that deepest level, and would keep their
    // space for good. So after the first pass, tombstones for the two ends
    // of the range (keys never used, as Kv::Compact requires) give a second
    // flush a small table that spans the range and sits above every table
    // of it; the second pass merges it down through them, which drops the
    // deleted keys.
    //
    // CompactRange reports nothing; a compaction that failed (ENOSPC) left
    // LevelDB's sticky error, which the writes after each pass return.
    leveldb::WriteBatch ends;
    ends.Delete(b);
    ends.Delete(e);
    UPFS_RETURN_IF_ERROR(CompactPass(b, e, &ends));
    leveldb::WriteBatch nothing;  // only collects the pass's error
    return CompactPass(b, e, &nothing);
  }

  // One CompactRange over [b, e], then `after` written (the write returns
  // a failure the compaction left).
  Status CompactPass(const leveldb::Slice& b, const leveldb::Slice& e, leveldb::WriteBatch* after) {
    {
      ReaderLock lock(db_mu_);
      UPFS_RETURN_IF_ERROR(CheckOpen());
      db_->CompactRange(&b, &e);
    }
    MutexLock lock(write_mu_);
    UPFS_RETURN_IF_ERROR(RecoverIfFailed());
    return WriteLocked(leveldb::WriteOptions(), after, "compaction");
  }

  uint64_t ThreadKeyComparisons() const override { return thread_key_comparisons; }

  Status CheckRoomForData(uint64_t bytes) override {
    MutexLock lock(space_mu_);
    if (bytes <= unchecked_budget_) {
      unchecked_budget_ -= bytes;
      return Status::OK();
    }
    UPFS_ASSIGN_OR_RETURN(uint64_t free, free_bytes_());
    const uint64_t need = opts_.reserve_bytes + bytes;
    if (free < need) {
      unchecked_budget_ = 0;
      return Status::NoSpace("the store's file system has " + std::to_string(free) +
                             " bytes free, below the " + std::to_string(opts_.reserve_bytes) +
                             " kept in reserve for the database (-o reserve); refusing " +
                             std::to_string(bytes) + " bytes of upload data until space is freed");
    }
    // Look again before a quarter of the headroom is used (LevelDB writes
    // each byte to its log and again to a table), and at least every
    // kMaxUncheckedBytes, in case something else fills the file system.
    unchecked_budget_ = std::min<uint64_t>((free - need) / 4, kMaxUncheckedBytes);
    return Status::OK();
  }

 private:
  static constexpr uint64_t kMaxUncheckedBytes = uint64_t{64} << 20;
  static constexpr auto kReopenInterval = std::chrono::seconds(1);
  static constexpr uint64_t kRecoverySlack = uint64_t{4} << 20;

  static leveldb::ReadOptions ReadOptions() {
    leveldb::ReadOptions options;
    // Every block read is checked, so a corrupted chunk fails the read
    // instead of returning wrong bytes.
    options.verify_checksums = true;
    return options;
  }

  Status CheckOpen() const REQUIRES_SHARED(db_mu_) {
    if (db_) return Status::OK();
    return Status::IOError("the store database " + db_dir_ +
                           " is closed after a failed reopen; retrying");
  }

  // Writes to the DB; a failure marks it failed.
  Status WriteLocked(const leveldb::WriteOptions& options, leveldb::WriteBatch* batch,
                     const char* what) REQUIRES(write_mu_) EXCLUDES(db_mu_) {
    ReaderLock lock(db_mu_);
    UPFS_RETURN_IF_ERROR(CheckOpen());
    leveldb::Status s = db_->Write(options, batch);
    if (s.ok()) return Status::OK();
    Status st = FromLevelDb(s, what);
    if (failed_.ok()) {
      spdlog::error("store {}: {} failed, no more writes until the database is reopened: {}",
                    db_dir_, what, st.ToString());
    }
    failed_ = st;
    return st;
  }

  // OK when the DB takes writes: it never failed, or a reopen just
  // cleared the failure. A reopen is tried at most once per
  // kReopenInterval, and only when the file system has room for what
  // recovery writes: a table per write-ahead log, and a new MANIFEST.
  // Not the whole reserve: a failed compaction's output stays on disk
  // until the reopen deletes it, so waiting for the reserve could wait
  // forever.
  Status RecoverIfFailed() REQUIRES(write_mu_) EXCLUDES(db_mu_) {
    if (failed_.ok()) return Status::OK();
    auto now = std::chrono::steady_clock::now();
    if (now < next_reopen_) return failed_;
    next_reopen_ = now + kReopenInterval;
    Result<uint64_t> free = free_bytes_();
    if (!free.ok() || *free < RecoveryBytes()) return failed_;
    WriterLock lock(db_mu_);
    db_.reset();
    leveldb::Status s = OpenDb(/*create=*/false);
    if (!s.ok()) {
      db_.reset();
      failed_ = FromLevelDb(s, "reopening " + db_dir_);
      spdlog::error("store {}: reopen failed, retrying later: {}", db_dir_, failed_.ToString());
      return failed_;
    }
    spdlog::info("store {}: reopened after a failed write ({}); writes resume", db_dir_,
                 failed_.ToString());
    failed_ = Status::OK();
    next_reopen_ = {};
    return Status::OK();
  }

  // Free space a reopen needs: the logs it replays into tables, plus
  // kRecoverySlack for the MANIFEST and table overhead.
  uint64_t RecoveryBytes() const {
    uint64_t logs = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(db_dir_, ec)) {
      if (entry.path().extension() == ".log") logs += entry.file_size(ec);
    }
    return logs + kRecoverySlack;
  }

  const std::string db_dir_;
  const LevelDbOptions opts_;
  const CountingComparator comparator_;
  const std::unique_ptr<leveldb::Env> base_env_;  // ours, or null when injected
  const std::unique_ptr<leveldb::Cache> cache_;
  const std::function<Result<uint64_t>()> free_bytes_;

  Mutex write_mu_;
  Status failed_ GUARDED_BY(write_mu_);  // OK, or why writes stopped
  std::chrono::steady_clock::time_point next_reopen_ GUARDED_BY(write_mu_);

  mutable SharedMutex db_mu_;
  std::unique_ptr<SyncDoneLogsEnv> env_ GUARDED_BY(db_mu_);  // for swapping
  std::unique_ptr<leveldb::DB> db_ GUARDED_BY(db_mu_);  // for swapping; null after a failed reopen

  Mutex space_mu_;
  uint64_t unchecked_budget_ GUARDED_BY(space_mu_) =
      0;  // data bytes accepted before the next statvfs
};

bool DirectoryIsEmptyForStore(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    // The daemon's own log may exist before the database does.
    if (entry.path().filename() != "upfs.log") return false;
  }
  return !ec;
}

}  // namespace

Result<std::unique_ptr<Kv>> OpenLevelDbKv(const std::string& db_dir, bool create,
                                          const LevelDbOptions& opts) {
  auto kv = std::make_unique<LevelDbKv>(db_dir, opts);
  leveldb::Status s = kv->FirstOpen(create);
  if (!s.ok()) {
    std::string msg = s.ToString();
    if (msg.find("LOCK") != std::string::npos &&
        (msg.find("temporarily unavailable") != std::string::npos ||
         msg.find("already held") != std::string::npos)) {
      return Status::Busy("store database " + db_dir + " is in use by another process (" + msg +
                          ")");
    }
    return FromLevelDb(s, "opening " + db_dir);
  }
  return std::unique_ptr<Kv>(std::move(kv));
}

Result<std::unique_ptr<Store>> OpenLevelDbStore(const std::string& store_dir,
                                                const LevelDbOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir(store_dir);
  fs::path db = dir / "db";
  bool create = false;
  if (!fs::exists(db, ec)) {
    if (fs::exists(dir, ec) && !DirectoryIsEmptyForStore(dir)) {
      return Status::InvalidArgument(store_dir +
                                     " is not a upfs store: it has other files and no db/");
    }
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("creating " + store_dir + ": " + ec.message());
    create = true;
  }
  UPFS_ASSIGN_OR_RETURN(auto kv, OpenLevelDbKv(db.string(), create, options));
  // After the database: its lock keeps a second process out of blobs/ too.
  std::unique_ptr<BlobFiles> blobs;
  if (options.open_blobs) {
    UPFS_ASSIGN_OR_RETURN(blobs, options.open_blobs((dir / "blobs").string()));
  } else {
    UPFS_ASSIGN_OR_RETURN(blobs, DirBlobFiles::Open((dir / "blobs").string()));
  }
  auto store = KvStore::Open(std::move(kv), std::move(blobs), create);
  if (!store.ok()) return store.status().WithContext(store_dir);
  Result<uint64_t> dropped = (*store)->BeginUse();
  if (!dropped.ok()) return dropped.status().WithContext(store_dir);
  if (*dropped > 0)
    spdlog::warn("store {}: {} chunks of open sessions were lost in a crash", store_dir, *dropped);
  return std::unique_ptr<Store>(std::move(store).value());
}

}  // namespace upfs::store
