#include "store/leveldb_kv.h"

#include <sys/resource.h>

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/filter_policy.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <system_error>

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

  leveldb::Status NewWritableFile(const std::string& fname, leveldb::WritableFile** result) override {
    leveldb::Status s = target()->NewWritableFile(fname, result);
    if (s.ok() && IsLog(fname)) *result = new SyncWhenDoneFile(this, *result);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& fname, leveldb::WritableFile** result) override {
    leveldb::Status s = target()->NewAppendableFile(fname, result);
    if (s.ok() && IsLog(fname)) *result = new SyncWhenDoneFile(this, *result);
    return s;
  }

  // OK, or the first failure to sync a log LevelDB was done with. Sticky:
  // those writes may never become durable, so no later synced write may
  // claim they are.
  leveldb::Status log_sync_error() const {
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(mu_);
    if (error_.ok() && !s.ok()) error_ = s;
  }

  mutable std::mutex mu_;
  leveldb::Status error_;  // GUARDED_BY(mu_)
};

class LevelDbKv : public Kv {
 public:
  LevelDbKv(std::unique_ptr<leveldb::DB> db, std::unique_ptr<leveldb::Env> base_env,
            std::unique_ptr<SyncDoneLogsEnv> env, std::unique_ptr<leveldb::Cache> cache,
            std::unique_ptr<const leveldb::FilterPolicy> filter)
      : base_env_(std::move(base_env)),
        env_(std::move(env)),
        cache_(std::move(cache)),
        filter_(std::move(filter)),
        db_(std::move(db)) {}

  ~LevelDbKv() override { db_.reset(); }  // the DB before its Env, cache and filter

  Status Get(std::string_view key, std::string* value) const override {
    return FromLevelDb(db_->Get(ReadOptions(), ToSlice(key), value), "get");
  }

  Status Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ReadOptions()));
    for (it->Seek(ToSlice(begin)); it->Valid(); it->Next()) {
      std::string_view key = ToView(it->key());
      if (key >= end) break;
      if (!visit(key, ToView(it->value()))) break;
    }
    return FromLevelDb(it->status(), "scan");
  }

  Status Last(std::string_view begin, std::string_view end, std::string* key,
              std::string* value) const override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ReadOptions()));
    it->Seek(ToSlice(end));
    if (it->Valid()) {
      it->Prev();
    } else {
      UPFS_RETURN_IF_ERROR(FromLevelDb(it->status(), "seek"));
      it->SeekToLast();
    }
    UPFS_RETURN_IF_ERROR(FromLevelDb(it->status(), "seek"));
    if (!it->Valid() || ToView(it->key()) < begin) return Status::NotFound("no key in range");
    key->assign(it->key().data(), it->key().size());
    value->assign(it->value().data(), it->value().size());
    return Status::OK();
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
    UPFS_RETURN_IF_ERROR(FromLevelDb(db_->Write(options, &batch), sync ? "synced write" : "write"));
    if (sync) return FromLevelDb(env_->log_sync_error(), "syncing a finished write-ahead log");
    return Status::OK();
  }

  Status Compact(std::string_view begin, std::string_view end) override {
    leveldb::Slice b = ToSlice(begin), e = ToSlice(end);
    db_->CompactRange(&b, &e);
    return Status::OK();
  }

 private:
  static leveldb::ReadOptions ReadOptions() {
    leveldb::ReadOptions options;
    // Every block read is checked, so a corrupted chunk fails the read
    // instead of returning wrong bytes.
    options.verify_checksums = true;
    return options;
  }

  const std::unique_ptr<leveldb::Env> base_env_;  // ours, or null when injected
  const std::unique_ptr<SyncDoneLogsEnv> env_;
  const std::unique_ptr<leveldb::Cache> cache_;
  const std::unique_ptr<const leveldb::FilterPolicy> filter_;
  std::unique_ptr<leveldb::DB> db_;
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
  auto cache = std::unique_ptr<leveldb::Cache>(leveldb::NewLRUCache(opts.block_cache_bytes));
  auto filter = std::unique_ptr<const leveldb::FilterPolicy>(leveldb::NewBloomFilterPolicy(10));
  leveldb::Options options;
  options.create_if_missing = create;
  options.paranoid_checks = true;
  options.write_buffer_size = opts.write_buffer_size;
  options.max_file_size = opts.max_file_size;
  // Upload bytes are mostly compressed media already; snappy would cost CPU
  // on every chunk for little gain.
  options.compression = leveldb::kNoCompression;
  options.block_cache = cache.get();
  options.filter_policy = filter.get();
  // Table files stay open for reading (pread, not mmap: see
  // store/leveldb_env.h); leave half the descriptors to FUSE and the rest.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    options.max_open_files = static_cast<int>(std::clamp<rlim_t>(nofile.rlim_cur / 2, 64, 1000));
  }
  // An injected Env (tests) is used as given, reads included.
  std::unique_ptr<leveldb::Env> base_env;
  if (opts.env == nullptr) base_env = std::make_unique<BoundedEnv>(leveldb::Env::Default());
  auto env = std::make_unique<SyncDoneLogsEnv>(opts.env != nullptr ? opts.env : base_env.get());
  options.env = env.get();
  leveldb::DB* raw = nullptr;
  leveldb::Status s = leveldb::DB::Open(options, db_dir, &raw);
  if (!s.ok()) {
    std::string msg = s.ToString();
    if (msg.find("LOCK") != std::string::npos &&
        (msg.find("temporarily unavailable") != std::string::npos || msg.find("already held") != std::string::npos)) {
      return Status::Busy("store database " + db_dir + " is in use by another process (" + msg + ")");
    }
    return FromLevelDb(s, "opening " + db_dir);
  }
  return std::unique_ptr<Kv>(
      new LevelDbKv(std::unique_ptr<leveldb::DB>(raw), std::move(base_env), std::move(env), std::move(cache),
                    std::move(filter)));
}

Result<std::unique_ptr<Store>> OpenLevelDbStore(const std::string& store_dir, const LevelDbOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir(store_dir);
  fs::path db = dir / "db";
  bool create = false;
  if (!fs::exists(db, ec)) {
    if (fs::exists(dir, ec) && !DirectoryIsEmptyForStore(dir)) {
      return Status::InvalidArgument(store_dir + " is not a upfs store: it has other files and no db/");
    }
    fs::create_directories(dir, ec);
    if (ec) return Status::IOError("creating " + store_dir + ": " + ec.message());
    create = true;
  }
  auto kv = OpenLevelDbKv(db.string(), create, options);
  if (!kv.ok()) return kv.status();
  auto store = KvStore::Open(std::move(kv).value(), create);
  if (!store.ok()) return store.status().WithContext(store_dir);
  return std::unique_ptr<Store>(std::move(store).value());
}

}  // namespace upfs::store
