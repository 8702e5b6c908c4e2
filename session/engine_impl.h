// Engine::Impl: the state behind Engine and the types it is made of (the
// session table, sessions, their nodes and files, open handles). Private to
// session/: only the engine's own files include it. Each part of the engine
// lives in the file named after it:
//
//   engine.cc         ids, attributes, lookup and readdir
//   recovery.cc       Engine::Open: sessions rebuilt from the store
//   namespace.cc      mkdir, create, unlink, rmdir, rename, setattr, xattrs
//   handles.cc        open, flush and release of file handles
//   write_path.cc     writes, truncation, reads and the running hash
//   finish.cc         verifying a session against its manifest and the commit
//   expiry.cc         dropping a session: expiry and abort
//   asset_removal.cc  removing a committed asset (rmdir assets/NAME, rm -r)
//   status_report.cc  the text of .status
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/mutex.h"
#include "session/asset_read_cache.h"
#include "session/engine.h"
#include "session/engine_counters.h"
#include "session/extent_map.h"
#include "session/hash_frontier.h"
#include "session/hooks.h"
#include "session/manifest.h"
#include "session/quota.h"

namespace upfs::session {

using store::AssetEntry;
using store::AssetLocation;
using store::AssetRecord;
using store::Batch;
using store::NodeRecord;
using store::SessionRecord;
using store::Xattrs;

// Where .finish and .status sit in the session's block of ids (the root
// is the session's own id; store::kIdsPerSession).
constexpr uint64_t kFinishOffset = 1;
constexpr uint64_t kStatusOffset = 2;
static_assert(kStatusOffset < store::kIdsPerSession && kFinishOffset < store::kIdsPerSession);

// Helpers for every part of the engine: quoting names in messages, byte
// ranges, and the rule for one path component.

inline std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out += "'";
  return out;
}

inline std::string RangeText(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

inline Status CheckName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name.size() > kMaxNameLength) {
    return Status::NameTooLong("name of " + std::to_string(name.size()) + " bytes (at most " +
                               std::to_string(kMaxNameLength) + ")");
  }
  if (name == "." || name == "..")
    return Status::InvalidArgument("name " + Quote(name) + " is reserved");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("name " + Quote(name) + " holds '/' or NUL");
  }
  return Status::OK();
}

// The parts of a file that only its lock may touch. One per file of every
// open session, so it is kept small (see docs/performance.md, "Scale and
// memory"): the blob is opened per operation rather than held, the extent
// map and hash state are inline, and an error message costs memory only
// once there is one.
struct FileState {
  FileState(store::Store* s, uint64_t blob_id) : store(s), blob(blob_id) {}

  // The file's bytes in the store. Cheap: a handle, nothing buffered.
  std::unique_ptr<store::ByteSink> Blob() const { return store->OpenBlob(blob); }

  // The ranges of the file the store holds (its extent records): what
  // `received` is rebuilt from at recovery and after a lost write.
  Result<ExtentMap> StoredRanges() const {
    std::vector<Extent> extents;
    UPFS_RETURN_IF_ERROR(Blob()->Extents(&extents));
    ExtentMap stored;
    for (const Extent& e : extents) stored.Add(e.begin, e.end);
    return stored;
  }

  void SetError(std::string message) REQUIRES(mu) {
    last_error = std::make_unique<std::string>(std::move(message));
  }

  // Taken after the file's session's mu (Engine::Impl, lock order).
  Mutex mu;
  store::Store* const store;
  const uint64_t blob;
  // In the background hasher's queue (Engine::Impl::ScheduleCatchUp).
  std::atomic<bool> catch_up_queued{false};
  ExtentMap received GUARDED_BY(mu);
  HashFrontier hash GUARDED_BY(mu);
  std::unique_ptr<std::string> last_error GUARDED_BY(mu);  // null: none
  // Written under mu; read without it for attributes.
  std::atomic<uint64_t> length{0};
  std::atomic<int64_t> mtime_ns{0};
  std::atomic<int64_t> ctime_ns{0};

  // A write or truncate changes both. Under mu, except for a file no
  // other thread sees yet (so not REQUIRES: both are atomic).
  void Modified(int64_t now) {
    mtime_ns = now;
    ctime_ns = now;
  }
  // Hashing after the reply (Engine::Impl::FeedAfterReply): writes whose
  // bytes are stored and answered but not yet fed to `hash`, each with the
  // hash_epoch it was stored in; at most one of them hashes at a time
  // (`feeding`, with mu let go). A truncation starts a new epoch: bytes
  // stored before it are no longer all the file's.
  struct PendingFeed {
    uint64_t begin, end, epoch;
  };
  std::vector<PendingFeed> pending_feeds GUARDED_BY(mu);
  bool feeding GUARDED_BY(mu) = false;
  uint64_t hash_epoch GUARDED_BY(mu) = 0;
  CondVar feed_done;  // a feed ended, or a pending write gave up its turn
  // Whether a pending write's range meets [begin, end).
  bool PendingMeets(uint64_t begin, uint64_t end) const REQUIRES(mu) {
    for (const PendingFeed& p : pending_feeds) {
      if (p.begin < end && begin < p.end) return true;
    }
    return false;
  }
  // Whether a pending write of this epoch holds the bytes at the hash's
  // frontier: its writer feeds them (and the background hasher need not).
  bool FrontierPending() const REQUIRES(mu) {
    const uint64_t at = hash.frontier();
    for (const PendingFeed& p : pending_feeds) {
      if (p.epoch == hash_epoch && p.begin <= at && at < p.end) return true;
    }
    return false;
  }
  // Waits until no write is left to feed the hash.
  void WaitForFeeds() REQUIRES(mu) {
    while (feeding || !pending_feeds.empty()) feed_done.Wait(mu);
  }

  // Set (under mu) when the file's blob is gone (unlinked or replaced with
  // no handle open, or its last handle released after that): writes and
  // reads through handles still open fail with Stale.
  std::atomic<bool> removed{false};
  // Handles open on this file. Guarded by its session's mu (which the
  // analysis cannot name from here).
  int handles = 0;
};

struct Node {
  uint64_t id = 0;
  uint64_t parent = 0;
  std::string name;
  bool is_dir = false;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t subdirs = 0;  // directories: subdirectories directly inside
  int64_t atime_ns = 0;
  int64_t dir_mtime_ns = 0;  // files keep theirs in FileState
  int64_t dir_ctime_ns = 0;
  Xattrs xattrs;
  // Directories only; created on first use (a file does not pay for it).
  std::unique_ptr<std::map<std::string, uint64_t, std::less<>>> children;
  std::shared_ptr<FileState> file;  // files

  int64_t mtime_ns() const { return file ? file->mtime_ns.load() : dir_mtime_ns; }
  int64_t ctime_ns() const { return file ? file->ctime_ns.load() : dir_ctime_ns; }
  void SetCtime(int64_t now) {
    if (file) {
      file->ctime_ns = now;
    } else {
      dir_ctime_ns = now;
    }
  }
  bool HasChildren() const { return children && !children->empty(); }

  NodeRecord ToRecord() const {
    NodeRecord r;
    r.id = id;
    r.parent = parent;
    r.name = name;
    r.is_dir = is_dir;
    r.mode = mode;
    r.uid = uid;
    r.gid = gid;
    r.mtime_ns = mtime_ns();
    r.atime_ns = atime_ns;
    r.ctime_ns = ctime_ns();
    r.length = file ? file->length.load() : 0;
    r.xattrs = xattrs;
    return r;
  }
};

enum class SessionState { kOpen, kFinishing, kGone };

struct Session : std::enable_shared_from_this<Session> {
  // Taken after Engine::Impl::table_mu, before a FileState's mu.
  Mutex mu;
  CondVar writes_done;  // signalled when writes_in_flight drops to 0
  SessionRecord record GUARDED_BY(mu);
  SessionState state = SessionState::kOpen;
  std::unordered_map<uint64_t, Node> nodes GUARDED_BY(mu);               // not the root
  std::map<std::string, uint64_t, std::less<>> children GUARDED_BY(mu);  // the root's
  // Files unlinked (or replaced by a rename) while a handle had them open.
  // As on a local filesystem, they are out of the namespace (and their
  // node records out of the store) but stay readable and writable through
  // those handles; their bytes are freed when the last one is released, or
  // with the session. They are never part of a commit. (After a crash
  // their bytes are an orphan blob: `upfs fsck` reports it and
  // --remove-orphans frees it.)
  std::unordered_map<uint64_t, Node> unlinked GUARDED_BY(mu);
  uint32_t root_subdirs GUARDED_BY(mu) = 0;
  int open_handles GUARDED_BY(mu) = 0;
  int writes_in_flight GUARDED_BY(mu) = 0;
  int64_t last_activity_ns GUARDED_BY(mu) = 0;
  std::string last_error GUARDED_BY(mu);
  // A store shared by several mounts: the id of the mount that holds this
  // session when it is another one; "" when this mount holds it. A session
  // held elsewhere is listed with its record only (no nodes: they are not
  // loaded) and serves .status from the store; anything else first takes
  // it over (take_over: Busy while the holder's lease is live).
  std::string holder GUARDED_BY(mu);
  // Bytes its files hold (received; unlinked files' until freed), as the
  // engine's QuotaLedger counts them for record.uid once `counted`.
  std::atomic<uint64_t> held_bytes{0};
  bool counted GUARDED_BY(mu) = false;
  std::function<Status(Session&)> take_over;  // set with holder

  // The id and name never change once the session is in the table (a
  // rename or commit makes a new record with the same ones), so they are
  // read without mu.
  uint64_t id() const NO_THREAD_SAFETY_ANALYSIS { return record.id; }
  const std::string& name() const NO_THREAD_SAFETY_ANALYSIS { return record.name; }

  // A node in the namespace or unlinked while open. The id must be one of
  // them (KindIn said kDir or kFile).
  Node& NodeAt(uint64_t node_id) REQUIRES(mu) {
    auto it = nodes.find(node_id);
    return it != nodes.end() ? it->second : unlinked.at(node_id);
  }
  bool IsUnlinked(uint64_t node_id) const REQUIRES(mu) { return unlinked.count(node_id) != 0; }

  // Status for an operation that needs the session open (and held by this
  // mount: one held by another is taken over first, if it can be).
  Status CheckOpen() REQUIRES(mu) {
    switch (state) {
      case SessionState::kOpen:
        return holder.empty() ? Status::OK() : take_over(*this);
      case SessionState::kFinishing:
        return Status::Busy("session " + Quote(record.name) + " is being finished");
      case SessionState::kGone:
        break;
    }
    return Status::Stale("session " + Quote(record.name) + " was committed, aborted or expired");
  }

  // The children map of directory `id` (the root or a subdirectory).
  Result<std::map<std::string, uint64_t, std::less<>>*> DirChildren(uint64_t dir_id) REQUIRES(mu) {
    if (dir_id == record.id) return &children;
    auto it = nodes.find(dir_id);
    if (it == nodes.end())
      return Status::NotFound("directory " + std::to_string(dir_id) + " is gone");
    if (!it->second.is_dir)
      return Status::NotDirectory(Quote(it->second.name) + " is not a directory");
    auto& dir_children = it->second.children;
    if (!dir_children)
      dir_children = std::make_unique<std::map<std::string, uint64_t, std::less<>>>();
    return dir_children.get();
  }

  // The subdirectory count of directory `dir_id` (the root or a
  // subdirectory, which DirChildren found).
  uint32_t& SubdirsOf(uint64_t dir_id) REQUIRES(mu) {
    return dir_id == record.id ? root_subdirs : nodes.at(dir_id).subdirs;
  }

  // The entries of directory `dir_id` change at `now`: its mtime and ctime
  // move, in `batch` (applied by the caller) and, once that succeeded,
  // by StampDir.
  void AddDirStamp(uint64_t dir_id, int64_t now, Batch* batch) const REQUIRES(mu) {
    if (dir_id == record.id) {
      SessionRecord r = record;
      r.mtime_ns = r.ctime_ns = now;
      batch->Put(r);
      return;
    }
    NodeRecord r = nodes.at(dir_id).ToRecord();
    r.mtime_ns = r.ctime_ns = now;
    batch->Put(record.id, std::move(r));
  }
  void StampDir(uint64_t dir_id, int64_t now) REQUIRES(mu) {
    if (dir_id == record.id) {
      record.mtime_ns = record.ctime_ns = now;
      return;
    }
    Node& n = nodes.at(dir_id);
    n.dir_mtime_ns = n.dir_ctime_ns = now;
  }

  // Path of a node relative to the session root.
  std::string PathOf(uint64_t id) const REQUIRES(mu) {
    if (auto u = unlinked.find(id); u != unlinked.end()) return "(unlinked) " + u->second.name;
    std::vector<const std::string*> parts;
    while (id != record.id) {
      auto it = nodes.find(id);
      if (it == nodes.end()) break;
      parts.push_back(&it->second.name);
      id = it->second.parent;
    }
    std::string path;
    for (auto p = parts.rbegin(); p != parts.rend(); ++p) {
      if (!path.empty()) path.push_back('/');
      path += **p;
    }
    return path;
  }

  std::string Where(uint64_t id) const REQUIRES(mu) {
    return "session " + Quote(record.name) + " file " + Quote(PathOf(id));
  }
};

struct Handle {
  uint64_t id = 0;
  NodeKind kind = NodeKind::kFile;
  bool writes = false;  // opened for writing (or O_TRUNC)
  std::shared_ptr<Session> session;
  std::shared_ptr<FileState> file;
  std::shared_ptr<const store::ByteSink> asset_blob;  // shared with loads ahead
  uint64_t asset_length = 0;

  Mutex mu;
  std::string text GUARDED_BY(mu);                     // manifest written, or .status snapshot
  std::optional<Status> commit_result GUARDED_BY(mu);  // .finish handles
};

struct Engine::Impl {
  Impl(std::unique_ptr<store::Store> s, Options o)
      : store(std::move(s)),
        options(std::move(o)),
        quota(options.quota_bytes, options.max_sessions,
              store->MountId().empty() ? nullptr : store.get()),
        ignore(options.ignore_patterns),
        asset_reads(AssetReadCache::kReadahead, store->PreferredReadBytes()) {
    if (!options.clock) options.clock = std::make_shared<SystemClock>();
    mount_time_ns = options.clock->NowNs();
    catch_up_thread = std::thread([this] { CatchUpLoop(); });
  }
  ~Impl() {
    notifier.reset();
    StopCatchUp();
    DropIdleReaderRecords();
  }

  const std::unique_ptr<store::Store> store;
  Options options;
  QuotaLedger quota;         // what each uid's held sessions hold
  const IgnoreRules ignore;  // from options.ignore_patterns
  int64_t mount_time_ns = 0;
  AssetReadCache asset_reads;  // reads of committed files
  // Runs the post_commit program (Options::post_commit); null without one.
  std::unique_ptr<CommitNotifier> notifier;
  // What GetStats reports (metrics).
  EngineCounters counters;

  // Committed assets: the link count of assets/ and statfs. Counted once
  // at open, then kept by commits.
  std::atomic<uint64_t> asset_count{0};
  // The times of sessions/ and assets/, which change as sessions begin,
  // end and commit. Kept in memory only: the mount time after a restart.
  std::atomic<int64_t> sessions_dir_ns{0};
  std::atomic<int64_t> assets_dir_ns{0};

  // Lock order: Handle::mu (a .finish handle's, held across its commit)
  // -> table_mu -> Session::mu -> FileState::mu, and asset_removal_mu ->
  // handles_mu. index_mu, handles_mu and catch_up_mu are leaves: nothing
  // else is locked while holding one. clang checks
  // that each member below is used with its lock held (GUARDED_BY,
  // REQUIRES); the order is checked by ThreadSanitizer's deadlock
  // detector in CI, not by the compiler.
  Mutex table_mu;
  std::map<std::string, std::shared_ptr<Session>, std::less<>> sessions GUARDED_BY(table_mu);

  Mutex index_mu;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> index
      GUARDED_BY(index_mu);  // id -> session

  Mutex handles_mu;
  std::unordered_map<uint64_t, std::shared_ptr<Handle>> handles GUARDED_BY(handles_mu);
  uint64_t next_handle GUARDED_BY(handles_mu) = 1;
  // Open handles per committed file (blob id), and the files of removed
  // assets whose bytes wait for their last reader.
  std::unordered_map<uint64_t, int> asset_readers GUARDED_BY(handles_mu);
  std::unordered_set<uint64_t> removed_waiting GUARDED_BY(handles_mu);
  // Their attributes (link count 0), for fstat(2) of the open handles.
  std::unordered_map<uint64_t, Attr> removed_attrs GUARDED_BY(handles_mu);
  // Held exclusively while an asset is removed, shared while a committed
  // file is opened or released: a removal sees every reader, and no reader
  // opens a file being removed. Taken before handles_mu.
  SharedMutex asset_removal_mu;
  // Several mounts: held across the store write that records this mount's
  // first reader of a committed file, or takes back the record after its
  // last one (Store::AddReader, DropReader), so that the two never cross
  // for one file. After asset_removal_mu, before handles_mu.
  Mutex reader_records_mu;
  // Several mounts: committed files whose reader record stays in the store
  // after this mount's last reader closed, taken back together by the
  // next expiry sweep (or the stop): reading the same files again costs
  // no write, nor does the close of a file read once.
  std::unordered_set<uint64_t> idle_reader_records GUARDED_BY(reader_records_mu);
  // Takes back the records of idle_reader_records (one store write).
  void DropIdleReaderRecords() EXCLUDES(reader_records_mu);

  int64_t Now() const { return options.clock->NowNs(); }

  std::shared_ptr<Handle> FindHandle(uint64_t handle) EXCLUDES(handles_mu) {
    MutexLock lock(handles_mu);
    auto it = handles.find(handle);
    return it == handles.end() ? nullptr : it->second;
  }

  // ---- id resolution ----

  std::shared_ptr<Session> SessionOf(uint64_t id) EXCLUDES(index_mu) {
    MutexLock lock(index_mu);
    auto it = index.find(id);
    return it == index.end() ? nullptr : it->second;
  }
  void IndexAdd(uint64_t id, const std::shared_ptr<Session>& s) EXCLUDES(index_mu) {
    MutexLock lock(index_mu);
    index[id] = s;
  }
  void IndexRemove(uint64_t id) EXCLUDES(index_mu) {
    MutexLock lock(index_mu);
    index.erase(id);
  }

  std::shared_ptr<Session> FindSession(std::string_view name) EXCLUDES(table_mu) {
    MutexLock lock(table_mu);
    auto it = sessions.find(name);
    return it == sessions.end() ? nullptr : it->second;
  }

  // ---- ids and attributes (engine.cc) ----

  static Result<NodeKind> KindIn(Session& s, uint64_t id) REQUIRES(s.mu);
  static Result<Attr> AttrIn(Session& s, uint64_t id) REQUIRES(s.mu);
  uint64_t CommittedSubdirs(std::string_view asset, std::string_view dir, uint64_t recorded);
  Attr RootAttrOf(const AssetRecord& r);
  Attr EntryAttrOf(const AssetEntry& e);
  Result<AssetLocation> Locate(uint64_t id);
  Result<Attr> AssetAttr(const AssetLocation& loc);
  Result<AssetEntry> AssetEntryOf(uint64_t id);
  Result<Attr> GetAttr(uint64_t id);

  // ---- namespace changes (namespace.cc) ----

  Status EditXattrs(Session& s, uint64_t id, NodeKind kind,
                    const std::function<void(Xattrs&)>& edit) REQUIRES(s.mu);
  static bool AddFileRemoval(Session& s, const Node& n, Batch* batch) REQUIRES(s.mu);
  Status ApplyFileRemoval(Session& s, FileState& f, const Batch& batch, bool still_open)
      REQUIRES(s.mu);
  // File `f`'s bytes left session `s` (removed, or lost): the owner's
  // quota gets them back. Called with the file's mu held too.
  void Unhold(Session& s, uint64_t bytes) REQUIRES(s.mu);
  // Session `s` ended (committed, aborted, expired): its place and bytes
  // in the quota go back.
  void Uncount(Session& s) REQUIRES(s.mu);
  void AfterFileRemoval(Session& s, uint64_t id, bool still_open) REQUIRES(s.mu);
  void FreeUnlinked(Session& s, uint64_t id) REQUIRES(s.mu);

  // ---- hashing (write_path.cc) ----

  static void CatchUp(FileState& f) REQUIRES(f.mu);
  static bool CatchUpStep(FileState& f) REQUIRES(f.mu);
  bool NeedsCatchUp(const FileState& f) const REQUIRES(f.mu);
  void ScheduleCatchUp(const std::shared_ptr<FileState>& f) EXCLUDES(catch_up_mu);
  void CatchUpLoop() EXCLUDES(catch_up_mu);
  void StopCatchUp() EXCLUDES(catch_up_mu);
  static Result<std::string> FullHash(FileState& f) REQUIRES(f.mu);
  // After a failed commit, each file's received ranges as the store holds them.
  static void ForgetLostBytes(const std::vector<std::shared_ptr<FileState>>& files,
                              const std::string& where);

  // ---- writes (write_path.cc) ----

  Status WriteFile(Session& s, uint64_t id, const std::shared_ptr<FileState>& file, uint64_t offset,
                   std::string_view data, Credentials* writer,
                   std::optional<uint64_t>* deferred_feed);
  // `owner` (the session's uid) is charged the bytes it adds (QuotaLedger),
  // `held` (the session's held_bytes) grows by them.
  // With `deferred_feed`, the hash is not fed: the write is left pending
  // (FileState::pending_feeds, *deferred_feed set to its epoch) for
  // FeedAfterReply.
  Status WriteLocked(FileState& f, uint64_t offset, std::string_view data, bool write_once,
                     uint32_t owner, std::atomic<uint64_t>* held, bool* catch_up,
                     std::optional<uint64_t>* deferred_feed);
  // Feeds the hash with a pending write's bytes, in file order: waits for
  // the pending writes before it, and leaves bytes after a gap to the
  // background hasher. Sets *catch_up when that has work.
  void FeedAfterReply(FileState& f, uint64_t offset, std::string_view data, uint64_t epoch,
                      bool* catch_up);
  // The rest of a write once its bytes are stored (and fed, or left to
  // FeedAfterReply): errors recorded, the session's writes in flight.
  void EndWrite(Session& s, uint64_t id, const std::shared_ptr<FileState>& file, uint64_t offset,
                Status* st, bool catch_up);
  Status ClearSetid(Session& s, Node& n, Credentials& who, const char* op) REQUIRES(s.mu);
  Status TruncateFile(Session& s, Node& n, uint64_t size) REQUIRES(s.mu);

  // ---- finishing (finish.cc) ----

  Status FinishSession(const std::shared_ptr<Session>& sp, std::string_view manifest_text,
                       CommitInfo* info);
  // On success, *committed_bytes holds the bytes of the files committed.
  Status VerifyAndCommit(const std::shared_ptr<Session>& sp, std::vector<ManifestLine> manifest,
                         CommitInfo* info, uint64_t* committed_bytes);

  // ---- expiry and abort (expiry.cc) ----

  Status DropSession(Session& s, bool sync);

  // ---- removing assets (asset_removal.cc) ----

  Status RemoveAsset(std::string_view name);
  // Why an unlink or rmdir inside an asset is refused (ReadOnly).
  Status AssetRemovalRefused() const;
  // Frees the bytes of a removed asset's file (its last reader closed, or
  // at start).
  void FreeRemoved(const std::vector<uint64_t>& blobs);
  // Several mounts: this mount's last reader of committed file `blob`
  // closed. Takes back its reader record; whether the file is now to be
  // freed: removed (here, `removed_here`, or on another mount) and read
  // by no live mount.
  bool LastReaderOfSharedFile(uint64_t blob, bool removed_here) REQUIRES(reader_records_mu);

  // ---- several mounts of one store (recovery.cc) ----

  // Whether other mounts share the store (then sessions have holders).
  bool Shared() const { return !store->MountId().empty(); }
  // Loads a session's nodes, extents and lengths from the store, and
  // indexes them (unless `index` is false: a copy for .status).
  Status LoadNodes(Session& s, bool index = true) REQUIRES(s.mu);
  // A new Session, which takes itself over through this engine when
  // another mount holds it (Session::take_over).
  std::shared_ptr<Session> NewSession() {
    auto s = std::make_shared<Session>();
    s->take_over = [this](Session& held) REQUIRES(held.mu) { return TakeOver(held); };
    return s;
  }
  // A session of the store, added to the table and the index: held by
  // this mount (holder "", nodes loaded) or by another (record only).
  Result<std::shared_ptr<Session>> AddSession(SessionRecord record, const std::string& holder)
      REQUIRES(table_mu);
  // Takes session `s`, held by another mount, over: Busy (logged, naming
  // the holder; only when `quiet` is false) while that mount's lease is
  // live.
  Status TakeOver(Session& s, bool quiet = false) REQUIRES(s.mu);
  // Drops a session another mount committed or aborted from the table.
  void ForgetForeign(const std::shared_ptr<Session>& s) REQUIRES(table_mu);
  // SessionOf, but for a session another mount holds, only while the
  // store still has it (else it is forgotten here: nullptr, and the id is
  // looked up on the committed side). Not under table_mu.
  std::shared_ptr<Session> ServedSessionOf(uint64_t id);
  // Shared stores: the session table brought up to date with the store's
  // (sessions other mounts began or ended).
  Status RefreshSessions() REQUIRES(table_mu);
  // The session `name`, looked up in the store too on a shared store.
  Result<std::shared_ptr<Session>> FetchSession(std::string_view name) REQUIRES(table_mu);

  // ---- status (status_report.cc) ----

  std::string Report(Session& s);

  // ---- the background hasher (write_path.cc) ----
  // Bytes that arrived beyond a file's hash frontier are read back and
  // hashed once the gap before them fills. That catch-up runs here, one
  // step (kCatchUpBytes) per hold of the file's lock, not in the write
  // that filled the gap: parallel writers to one file are not held up
  // by it, and finish completes whatever is left.
  Mutex catch_up_mu;
  CondVar catch_up_wake;
  std::deque<std::shared_ptr<FileState>> catch_up_queue GUARDED_BY(catch_up_mu);
  bool catch_up_stopping GUARDED_BY(catch_up_mu) = false;
  std::thread catch_up_thread;  // last: started once everything above exists
};

}  // namespace upfs::session
