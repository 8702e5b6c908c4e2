#include "session/engine.h"

#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

#include "session/asset_read_cache.h"
#include "session/extent_map.h"
#include "session/hash_frontier.h"
#include "session/manifest.h"

namespace upfs::session {

bool IsDirectoryKind(NodeKind kind) {
  switch (kind) {
    case NodeKind::kRoot:
    case NodeKind::kSessionsDir:
    case NodeKind::kAssetsDir:
    case NodeKind::kSessionRoot:
    case NodeKind::kDir:
    case NodeKind::kAssetRoot:
    case NodeKind::kAssetDir:
      return true;
    case NodeKind::kFile:
    case NodeKind::kFinish:
    case NodeKind::kStatus:
    case NodeKind::kAssetFile:
      return false;
  }
  return false;
}

bool IsCommittedKind(NodeKind kind) {
  return kind == NodeKind::kAssetsDir || kind == NodeKind::kAssetRoot || kind == NodeKind::kAssetDir ||
         kind == NodeKind::kAssetFile;
}

namespace {

using store::AssetEntry;
using store::AssetLocation;
using store::AssetRecord;
using store::Batch;
using store::NodeRecord;
using store::SessionRecord;
using store::Xattrs;

// Bytes read back from the store per step when catching a hash up.
constexpr size_t kCatchUpBytes = size_t{1} << 20;
// Linux's limits for one extended attribute.
constexpr size_t kMaxXattrValue = 64 * 1024;
// Missing ranges listed per file in .status before "... (N more)".
constexpr size_t kStatusMaxRanges = 16;

// Finishes of sessions with at least this many nodes return freed memory
// to the system afterwards (ReturnFreeMemory).
constexpr size_t kTrimAfterNodes = 1024;

// Ids each session reserves: root, .finish, .status.
constexpr uint64_t kFinishOffset = 1;
constexpr uint64_t kStatusOffset = 2;

std::string Quote(std::string_view s) {
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

std::string RangeText(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

std::string TimeText(int64_t ns) {
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status CheckName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("empty name");
  if (name.size() > kMaxNameLength) {
    return Status::NameTooLong("name of " + std::to_string(name.size()) + " bytes (at most " +
                               std::to_string(kMaxNameLength) + ")");
  }
  if (name == "." || name == "..") return Status::InvalidArgument("name " + Quote(name) + " is reserved");
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("name " + Quote(name) + " holds '/' or NUL");
  }
  return Status::OK();
}

bool IsReserved(std::string_view name) { return name == kFinishName || name == kStatusName; }

// `.finish` and `.status` exist only at a session's root. Anywhere else (a
// session's own name, a name in a subdirectory) they are refused rather
// than made ordinary: a manifest written to sub/.finish would silently be
// an upload instead of a commit. (At the root the names are taken:
// Exists, or NotPermitted for a rename onto them.)
Status CheckNotControlName(std::string_view name) {
  if (!IsReserved(name)) return Status::OK();
  return Status::InvalidArgument("name " + Quote(name) +
                                 " is reserved for the control file at a session's root");
}

// Extended attributes upfs stores: the user namespace. Others (ACLs,
// security labels) are refused as unsupported so tools such as `cp -a`
// skip them quietly.
Status CheckXattrName(std::string_view name) {
  if (name.rfind("user.", 0) != 0) return Status::NotSupported("only user.* extended attributes are stored");
  if (name.size() > 255) return Status::NameTooLong("extended attribute name too long");
  return Status::OK();
}

// The parts of a file that only its lock may touch. One per file of every
// open session, so it is kept small (see README, "Other users, expiry and
// scale"): the blob is opened per operation rather than held, the extent
// map and hash state are inline, and an error message costs memory only
// once there is one.
struct FileState {
  FileState(store::Store* s, uint64_t blob_id) : store(s), blob(blob_id) {}

  // The file's bytes in the store. Cheap: a handle, nothing buffered.
  std::unique_ptr<store::ByteSink> Blob() const { return store->OpenBlob(blob); }

  // REQUIRES(mu)
  void SetError(std::string message) { last_error = std::make_unique<std::string>(std::move(message)); }

  std::mutex mu;
  store::Store* const store;
  const uint64_t blob;
  ExtentMap received;                       // GUARDED_BY(mu)
  HashFrontier hash;                        // GUARDED_BY(mu)
  std::unique_ptr<std::string> last_error;  // GUARDED_BY(mu); null: none
  // Written under mu; read without it for attributes.
  std::atomic<uint64_t> length{0};
  std::atomic<int64_t> mtime_ns{0};
  std::atomic<int64_t> ctime_ns{0};

  // A write or truncate changes both. REQUIRES(mu)
  void Modified(int64_t now) {
    mtime_ns = now;
    ctime_ns = now;
  }
  // Set (under mu) when the file's blob is gone (unlinked or replaced with
  // no handle open, or its last handle released after that): writes and
  // reads through handles still open fail with Stale.
  std::atomic<bool> removed{false};
  // Handles open on this file. GUARDED_BY(Session::mu)
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
  std::shared_ptr<FileState> file;                        // files

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

struct Session {
  std::mutex mu;
  std::condition_variable writes_done;  // signalled when writes_in_flight drops to 0
  SessionRecord record;                 // GUARDED_BY(mu)
  SessionState state = SessionState::kOpen;
  std::unordered_map<uint64_t, Node> nodes;               // GUARDED_BY(mu); not the root
  std::map<std::string, uint64_t, std::less<>> children;  // GUARDED_BY(mu); the root's
  // Files unlinked (or replaced by a rename) while a handle had them open.
  // As on a local filesystem, they are out of the namespace (and their
  // node records out of the store) but stay readable and writable through
  // those handles; their bytes are freed when the last one is released, or
  // with the session. They are never part of a commit. (After a crash
  // their bytes are an orphan blob: `upfs fsck` reports it and
  // --remove-orphans frees it.)
  std::unordered_map<uint64_t, Node> unlinked;  // GUARDED_BY(mu)
  uint32_t root_subdirs = 0;                              // GUARDED_BY(mu)
  int open_handles = 0;                                   // GUARDED_BY(mu)
  int writes_in_flight = 0;                               // GUARDED_BY(mu)
  int64_t last_activity_ns = 0;                           // GUARDED_BY(mu)
  std::string last_error;                                 // GUARDED_BY(mu)

  uint64_t id() const { return record.id; }

  // A node in the namespace or unlinked while open. REQUIRES(mu); the id
  // must be one of them (KindIn said kDir or kFile).
  Node& NodeAt(uint64_t node_id) {
    auto it = nodes.find(node_id);
    return it != nodes.end() ? it->second : unlinked.at(node_id);
  }
  bool IsUnlinked(uint64_t node_id) const { return unlinked.count(node_id) != 0; }  // REQUIRES(mu)

  // Status for an operation that needs the session open. REQUIRES(mu)
  Status CheckOpen() const {
    switch (state) {
      case SessionState::kOpen: return Status::OK();
      case SessionState::kFinishing:
        return Status::Busy("session " + Quote(record.name) + " is being finished");
      case SessionState::kGone: break;
    }
    return Status::Stale("session " + Quote(record.name) + " was committed, aborted or expired");
  }

  // The children map of directory `id` (the root or a subdirectory).
  // REQUIRES(mu)
  Result<std::map<std::string, uint64_t, std::less<>>*> DirChildren(uint64_t dir_id) {
    if (dir_id == record.id) return &children;
    auto it = nodes.find(dir_id);
    if (it == nodes.end()) return Status::NotFound("directory " + std::to_string(dir_id) + " is gone");
    if (!it->second.is_dir) return Status::NotDirectory(Quote(it->second.name) + " is not a directory");
    auto& dir_children = it->second.children;
    if (!dir_children) dir_children = std::make_unique<std::map<std::string, uint64_t, std::less<>>>();
    return dir_children.get();
  }

  // The subdirectory count of directory `dir_id` (the root or a
  // subdirectory, which DirChildren found). REQUIRES(mu)
  uint32_t& SubdirsOf(uint64_t dir_id) { return dir_id == record.id ? root_subdirs : nodes.at(dir_id).subdirs; }

  // The entries of directory `dir_id` change at `now`: its mtime and ctime
  // move, in `batch` (applied by the caller) and, once that succeeded,
  // by StampDir. REQUIRES(mu)
  void AddDirStamp(uint64_t dir_id, int64_t now, Batch* batch) const {
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
  void StampDir(uint64_t dir_id, int64_t now) {
    if (dir_id == record.id) {
      record.mtime_ns = record.ctime_ns = now;
      return;
    }
    Node& n = nodes.at(dir_id);
    n.dir_mtime_ns = n.dir_ctime_ns = now;
  }

  // Path of a node relative to the session root. REQUIRES(mu)
  std::string PathOf(uint64_t id) const {
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

  std::string Where(uint64_t id) const {  // REQUIRES(mu)
    return "session " + Quote(record.name) + " file " + Quote(PathOf(id));
  }
};

struct Handle {
  uint64_t id = 0;
  NodeKind kind = NodeKind::kFile;
  std::shared_ptr<Session> session;
  std::shared_ptr<FileState> file;
  std::unique_ptr<store::ByteSink> asset_blob;
  uint64_t asset_length = 0;

  std::mutex mu;
  std::string text;                     // GUARDED_BY(mu): manifest written, or .status snapshot
  std::optional<Status> commit_result;  // GUARDED_BY(mu): .finish handles
  std::optional<CommitInfo> commit_info;
};

// A node's three times.
struct Times {
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  static Times All(int64_t ns) { return {ns, ns, ns}; }
  template <typename Record>
  static Times Of(const Record& r) {
    return {r.atime_ns, r.mtime_ns, r.ctime_ns};
  }
};

Attr BaseAttr(uint64_t id, NodeKind kind, uint32_t mode, uint32_t uid, uint32_t gid, Times t) {
  Attr a;
  a.id = id;
  a.kind = kind;
  a.mode = mode;
  a.uid = uid;
  a.gid = gid;
  a.atime_ns = t.atime_ns;
  a.mtime_ns = t.mtime_ns;
  a.ctime_ns = t.ctime_ns;
  return a;
}

// `subdirs`: the directories directly inside; the link count is 2 + that
// ("." and the entry in the parent, plus each subdirectory's ".."), as on
// ext4, so find(1)'s leaf optimisation and fts count right.
Attr DirAttr(uint64_t id, NodeKind kind, uint32_t mode, uint32_t uid, uint32_t gid, Times t, uint64_t subdirs) {
  Attr a = BaseAttr(id, kind, S_IFDIR | (mode & 07777), uid, gid, t);
  a.nlink = static_cast<uint32_t>(std::min<uint64_t>(2 + subdirs, UINT32_MAX));
  return a;
}

Attr FileAttr(uint64_t id, NodeKind kind, uint32_t mode, uint32_t uid, uint32_t gid, Times t, uint64_t size) {
  Attr a = BaseAttr(id, kind, S_IFREG | (mode & 07777), uid, gid, t);
  a.nlink = 1;
  a.size = size;
  return a;
}

// Committed directories written before the count was recorded have
// subdirs == kUnknownCount: the caller counts their entries instead.
Attr EntryAttr(const AssetEntry& e, uint64_t subdirs) {
  if (e.is_dir) return DirAttr(e.id, NodeKind::kAssetDir, e.mode, e.uid, e.gid, Times::Of(e), subdirs);
  return FileAttr(e.id, NodeKind::kAssetFile, e.mode, e.uid, e.gid, Times::Of(e), e.length);
}

Attr AssetRootAttr(const AssetRecord& r, uint64_t subdirs) {
  return DirAttr(r.root_id, NodeKind::kAssetRoot, r.mode, r.uid, r.gid, Times::Of(r), subdirs);
}

// Path of an asset location's own directory, for looking up its children.
std::string ChildDir(const AssetLocation& loc) {
  if (loc.is_root()) return "";
  return loc.dir.empty() ? loc.name : loc.dir + "/" + loc.name;
}

}  // namespace

struct Engine::Impl {
  Impl(std::unique_ptr<store::Store> s, Options o) : store(std::move(s)), options(std::move(o)) {
    if (!options.clock) options.clock = std::make_shared<SystemClock>();
    mount_time_ns = options.clock->NowNs();
  }

  const std::unique_ptr<store::Store> store;
  Options options;
  int64_t mount_time_ns = 0;
  AssetReadCache asset_reads;  // reads of committed files

  // Committed assets: the link count of assets/ and statfs. Counted once
  // at open, then kept by commits.
  std::atomic<uint64_t> asset_count{0};
  // The times of sessions/ and assets/, which change as sessions begin,
  // end and commit. Kept in memory only: the mount time after a restart.
  std::atomic<int64_t> sessions_dir_ns{0};
  std::atomic<int64_t> assets_dir_ns{0};

  // Lock order: table_mu -> Session::mu -> FileState::mu. index_mu and
  // handles_mu are leaves: nothing else is locked while holding them.
  std::mutex table_mu;
  std::map<std::string, std::shared_ptr<Session>, std::less<>> sessions;  // GUARDED_BY(table_mu)

  std::mutex index_mu;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> index;  // GUARDED_BY(index_mu): id -> session

  std::mutex handles_mu;
  std::unordered_map<uint64_t, std::shared_ptr<Handle>> handles;  // GUARDED_BY(handles_mu)
  uint64_t next_handle = 1;                                       // GUARDED_BY(handles_mu)

  int64_t Now() const { return options.clock->NowNs(); }

  std::shared_ptr<Handle> FindHandle(uint64_t handle) {
    std::lock_guard lock(handles_mu);
    auto it = handles.find(handle);
    return it == handles.end() ? nullptr : it->second;
  }

  // ---- id resolution ----

  std::shared_ptr<Session> SessionOf(uint64_t id) {
    std::lock_guard lock(index_mu);
    auto it = index.find(id);
    return it == index.end() ? nullptr : it->second;
  }
  void IndexAdd(uint64_t id, const std::shared_ptr<Session>& s) {
    std::lock_guard lock(index_mu);
    index[id] = s;
  }
  void IndexRemove(uint64_t id) {
    std::lock_guard lock(index_mu);
    index.erase(id);
  }

  std::shared_ptr<Session> FindSession(std::string_view name) {
    std::lock_guard lock(table_mu);
    auto it = sessions.find(name);
    return it == sessions.end() ? nullptr : it->second;
  }

  // Kind of a session-side id. REQUIRES(s.mu)
  static Result<NodeKind> KindIn(Session& s, uint64_t id) {
    if (id == s.id()) return NodeKind::kSessionRoot;
    if (id == s.id() + kFinishOffset) return NodeKind::kFinish;
    if (id == s.id() + kStatusOffset) return NodeKind::kStatus;
    auto it = s.nodes.find(id);
    if (it == s.nodes.end()) {
      if (s.IsUnlinked(id)) return NodeKind::kFile;
      return Status::NotFound("id " + std::to_string(id) + " is gone");
    }
    return it->second.is_dir ? NodeKind::kDir : NodeKind::kFile;
  }

  // Attributes of a session-side id. REQUIRES(s.mu)
  static Result<Attr> AttrIn(Session& s, uint64_t id) {
    const SessionRecord& r = s.record;
    if (id == r.id) return DirAttr(r.id, NodeKind::kSessionRoot, r.mode, r.uid, r.gid, Times::Of(r), s.root_subdirs);
    if (id == r.id + kFinishOffset) {
      return FileAttr(id, NodeKind::kFinish, 0200, r.uid, r.gid, Times::All(r.mtime_ns), 0);
    }
    if (id == r.id + kStatusOffset) {
      return FileAttr(id, NodeKind::kStatus, 0444, r.uid, r.gid, Times::All(s.last_activity_ns), 0);
    }
    auto it = s.nodes.find(id);
    const bool unlinked = it == s.nodes.end();
    if (unlinked) {
      it = s.unlinked.find(id);
      if (it == s.unlinked.end()) return Status::NotFound("id " + std::to_string(id) + " is gone");
    }
    const Node& n = it->second;
    const Times t{n.atime_ns, n.mtime_ns(), n.ctime_ns()};
    if (n.is_dir) return DirAttr(n.id, NodeKind::kDir, n.mode, n.uid, n.gid, t, n.subdirs);
    Attr a = FileAttr(n.id, NodeKind::kFile, n.mode, n.uid, n.gid, t, n.file->length.load());
    // fstat(2) of an unlinked file that is still open: no links left.
    if (unlinked) a.nlink = 0;
    return a;
  }

  // The subdirectory count of a committed directory: as recorded at
  // commit, or counted for a record from before the count was kept.
  uint64_t CommittedSubdirs(std::string_view asset, std::string_view dir, uint64_t recorded) {
    if (recorded != store::kUnknownCount) return recorded;
    std::vector<AssetEntry> entries;
    if (!store->ListAssetDir(asset, dir, &entries).ok()) return 0;
    return static_cast<uint64_t>(
        std::count_if(entries.begin(), entries.end(), [](const AssetEntry& e) { return e.is_dir; }));
  }
  Attr RootAttrOf(const AssetRecord& r) { return AssetRootAttr(r, CommittedSubdirs(r.name, "", r.subdirs)); }
  Attr EntryAttrOf(const AssetEntry& e) {
    return EntryAttr(e, e.is_dir ? CommittedSubdirs(e.asset, e.Path(), e.subdirs) : 0);
  }

  Result<AssetLocation> Locate(uint64_t id) {
    AssetLocation loc;
    Status s = store->LocateId(id, &loc);
    if (s.IsNotFound()) return Status::NotFound("no object with id " + std::to_string(id));
    if (!s.ok()) return s;
    return loc;
  }

  Result<Attr> AssetAttr(const AssetLocation& loc) {
    if (loc.is_root()) {
      AssetRecord r;
      UPFS_RETURN_IF_ERROR(store->GetAsset(loc.asset, &r));
      return RootAttrOf(r);
    }
    AssetEntry e;
    UPFS_RETURN_IF_ERROR(store->GetAssetEntry(loc.asset, loc.dir, loc.name, &e));
    return EntryAttrOf(e);
  }

  Result<AssetEntry> AssetEntryOf(uint64_t id) {
    auto loc = Locate(id);
    if (!loc.ok()) return loc.status();
    if (loc->is_root()) return Status::IsDirectory("asset root");
    AssetEntry e;
    UPFS_RETURN_IF_ERROR(store->GetAssetEntry(loc->asset, loc->dir, loc->name, &e));
    return e;
  }

  Result<Attr> GetAttr(uint64_t id) {
    switch (id) {
      case kRootId: return DirAttr(kRootId, NodeKind::kRoot, 0755, 0, 0, Times::All(mount_time_ns), 2);
      // Both sides are sticky and world-writable, like /tmp: anyone may
      // begin a session, only its owner may remove, rename or commit it.
      case kSessionsId: {
        uint64_t open_sessions;
        {
          std::lock_guard lock(table_mu);
          open_sessions = sessions.size();
        }
        return DirAttr(kSessionsId, NodeKind::kSessionsDir, 01777, 0, 0, Times::All(sessions_dir_ns.load()),
                       open_sessions);
      }
      case kAssetsId:
        return DirAttr(kAssetsId, NodeKind::kAssetsDir, 01777, 0, 0, Times::All(assets_dir_ns.load()),
                       asset_count.load());
      default: break;
    }
    if (auto s = SessionOf(id)) {
      std::lock_guard lock(s->mu);
      if (s->state != SessionState::kGone) return AttrIn(*s, id);
    }
    auto loc = Locate(id);
    if (!loc.ok()) return loc.status();
    return AssetAttr(*loc);
  }

  // Changes the extended attributes of a session's root or node (kind
  // kSessionRoot, kDir or kFile) through `edit`, and so its ctime.
  // REQUIRES(s.mu)
  Status EditXattrs(Session& s, uint64_t id, NodeKind kind, const std::function<void(Xattrs&)>& edit) {
    const int64_t now = Now();
    Batch batch;
    if (kind == NodeKind::kSessionRoot) {
      SessionRecord r = s.record;
      edit(r.xattrs);
      r.ctime_ns = now;
      batch.Put(r);
      UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
      s.record = std::move(r);
      return Status::OK();
    }
    Node& n = s.NodeAt(id);
    NodeRecord rec = n.ToRecord();
    edit(rec.xattrs);
    rec.ctime_ns = now;
    if (!s.IsUnlinked(id)) batch.Put(s.id(), rec);  // unlinked: no record, memory only
    UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
    n.xattrs = std::move(rec.xattrs);
    n.SetCtime(now);
    return Status::OK();
  }

  // ---- hashing ----

  // Hashes received bytes from the frontier on, as far as they are
  // contiguous. REQUIRES(f.mu)
  static void CatchUp(FileState& f) {
    std::string buf;
    while (f.hash.valid()) {
      uint64_t from = f.hash.frontier();
      uint64_t to = std::min(f.received.ContiguousEnd(from), f.length.load());
      if (to <= from) return;
      size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, kCatchUpBytes));
      buf.resize(n);
      Status s = f.Blob()->ReadAt(from, n, buf.data());
      if (!s.ok()) {
        // Finish rehashes from scratch and reports the read error there.
        spdlog::warn("hash catch-up read at offset {} failed: {}", from, s.ToString());
        f.hash.Invalidate();
        return;
      }
      f.hash.Feed(from, buf);
    }
  }

  // The SHA-256 of a complete file, rehashing from the store if needed.
  // REQUIRES(f.mu)
  static Result<std::string> FullHash(FileState& f) {
    if (!f.hash.valid()) f.hash.Reset();
    CatchUp(f);
    if (!f.hash.valid()) return Status::IOError("reading the file back to hash it failed");
    if (f.hash.frontier() != f.length.load()) {
      return Status::MissingData("hash stopped at offset " + std::to_string(f.hash.frontier()));
    }
    return f.hash.HexDigest();
  }

  // ---- writes ----

  Status WriteFile(Session& s, uint64_t id, FileState& f, uint64_t offset, std::string_view data,
                   Credentials* writer) {
    bool write_once;
    {
      std::lock_guard lock(s.mu);
      UPFS_RETURN_IF_ERROR(s.CheckOpen());
      if (f.removed) return Status::Stale(s.Where(id) + " was removed");
      if (writer) UPFS_RETURN_IF_ERROR(ClearSetid(s, s.NodeAt(id), *writer, "write"));
      write_once = s.record.write_once;
      ++s.writes_in_flight;
      s.last_activity_ns = Now();
    }
    Status st = WriteLocked(f, offset, data, write_once);
    std::lock_guard lock(s.mu);
    if (!st.ok()) {
      st = st.WithContext(s.Where(id) + " offset " + std::to_string(offset));
      s.last_error = st.message();
      std::lock_guard flock(f.mu);
      f.SetError(st.message());
    }
    if (--s.writes_in_flight == 0) s.writes_done.notify_all();
    return st;
  }

  Status WriteLocked(FileState& f, uint64_t offset, std::string_view data, bool write_once) {
    if (offset >= store::kMaxBlobLength || data.size() > store::kMaxBlobLength - offset) {
      return Status::TooLarge("write ends beyond 2^62 bytes, the largest file upfs stores");
    }
    if (data.empty()) return Status::OK();
    uint64_t end = offset + data.size();
    std::lock_guard lock(f.mu);
    if (f.removed) return Status::Stale("file was removed");
    bool rewrites_hashed = false;
    bool skip_store = false;
    if (f.received.Intersects(offset, end)) {
      // Slow path: bytes already received are being rewritten. Compare so
      // that identical rewrites (resumed uploads, retries) keep the hash and
      // write-once sessions can refuse different bytes.
      std::string old(data.size(), '\0');
      UPFS_RETURN_IF_ERROR(f.Blob()->ReadAt(offset, data.size(), old.data()));
      uint64_t hashed_end = f.hash.valid() ? f.hash.frontier() : 0;
      uint64_t covered = 0;
      bool differs = false;
      for (const Extent& e : f.received.Covered(offset, end)) {
        covered += e.end - e.begin;
        size_t at = e.begin - offset, n = e.end - e.begin;
        if (std::memcmp(old.data() + at, data.data() + at, n) == 0) continue;
        differs = true;
        if (e.begin < hashed_end) {
          uint64_t cmp_end = std::min(e.end, hashed_end);
          rewrites_hashed |= std::memcmp(old.data() + at, data.data() + at, cmp_end - e.begin) != 0;
        }
        if (write_once) {
          return Status::WriteConflict("write-once session: bytes in " + RangeText(e.begin, e.end) +
                                       " differ from those already received");
        }
      }
      skip_store = !differs && covered == data.size();
    }
    if (!skip_store) UPFS_RETURN_IF_ERROR(f.Blob()->WriteAt(offset, data));
    f.received.Add(offset, end);
    if (end > f.length.load()) f.length = end;
    f.Modified(Now());
    if (rewrites_hashed) {
      f.hash.Invalidate();
    } else if (f.hash.Feed(offset, data)) {
      CatchUp(f);
    }
    return Status::OK();
  }

  // Clears the setuid/setgid bits of file `n` that a write or truncate by
  // `who` clears on a local filesystem (see Credentials). REQUIRES(s.mu)
  Status ClearSetid(Session& s, Node& n, Credentials& who, const char* op) {
    if (n.is_dir || !(n.mode & (S_ISUID | S_ISGID))) return Status::OK();
    uint32_t clear = n.mode & S_ISUID;
    if ((n.mode & S_ISGID) && ((n.mode & S_IXGRP) || !who.InGroup(n.gid))) clear |= S_ISGID;
    if (clear == 0 || who.HasCapFsetid()) return Status::OK();
    NodeRecord rec = n.ToRecord();
    rec.mode &= ~clear;
    rec.ctime_ns = Now();
    Batch batch;
    if (!s.IsUnlinked(n.id)) batch.Put(s.id(), rec);  // unlinked: no record, memory only
    UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
    n.mode = rec.mode;
    n.SetCtime(rec.ctime_ns);
    spdlog::info("{}: {} by a caller without CAP_FSETID cleared mode bits {:o} (now {:o})", s.Where(n.id), op,
                 clear, n.mode);
    return Status::OK();
  }

  // Sets a file's length. REQUIRES(s.mu)
  Status TruncateFile(Session& s, Node& n, uint64_t size) {
    if (size > store::kMaxBlobLength) return Status::TooLarge("length beyond 2^62 bytes");
    FileState& f = *n.file;
    std::lock_guard lock(f.mu);
    NodeRecord rec = n.ToRecord();
    rec.length = size;
    rec.mtime_ns = rec.ctime_ns = Now();
    Batch batch;
    if (size < f.received.End()) batch.Truncate(n.id, size);
    if (!s.IsUnlinked(n.id)) batch.Put(s.id(), rec);
    UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
    f.received.Truncate(size);
    f.length = size;
    f.Modified(rec.mtime_ns);
    if (size == 0) {
      f.hash.Reset();
    } else if (f.hash.valid() && f.hash.frontier() > size) {
      f.hash.Invalidate();  // SHA-256 cannot step back
    }
    return Status::OK();
  }

  // Takes file node `n` out of the namespace: its record goes in `batch`,
  // and its bytes too unless a handle still has it open. Returns whether it
  // stays open (then AfterFileRemoval keeps it among the unlinked).
  // REQUIRES(s.mu)
  static bool AddFileRemoval(Session& s, const Node& n, Batch* batch) {
    batch->DeleteNodeRecord(s.id(), n.id);
    if (n.file->handles > 0) return true;
    batch->DeleteBlobData(n.id);
    return false;
  }

  // Applies the batch of AddFileRemoval for file `f`. Under the file's
  // lock, so that no write lands between the deletion of its bytes and
  // `removed`. REQUIRES(s.mu)
  Status ApplyFileRemoval(FileState& f, const Batch& batch, bool still_open) {
    std::lock_guard flock(f.mu);
    UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
    if (!still_open) f.removed = true;
    return Status::OK();
  }

  // Once ApplyFileRemoval succeeded; the caller has erased the name from
  // its directory. REQUIRES(s.mu)
  void AfterFileRemoval(Session& s, uint64_t id, bool still_open) {
    auto node = s.nodes.extract(id);
    if (still_open) {
      s.unlinked.insert(std::move(node));
    } else {
      IndexRemove(id);
    }
  }

  // The last handle of an unlinked file was released: frees its bytes.
  // REQUIRES(s.mu)
  void FreeUnlinked(Session& s, uint64_t id) {
    auto it = s.unlinked.find(id);
    if (it == s.unlinked.end()) return;
    Batch batch;
    batch.DeleteBlobData(id);
    Status st = ApplyFileRemoval(*it->second.file, batch, /*still_open=*/false);
    if (!st.ok()) {
      // Nothing refers to the bytes any more; fsck finds and frees them.
      spdlog::warn("{}: freeing the bytes of the unlinked file failed (an orphan for upfs fsck): {}",
                   s.Where(id), st.ToString());
      std::lock_guard flock(it->second.file->mu);
      it->second.file->removed = true;
    }
    s.unlinked.erase(it);
    IndexRemove(id);
  }

  // ---- finishing ----

  Status FinishSession(const std::shared_ptr<Session>& sp, std::string_view manifest_text, CommitInfo* info) {
    Session& s = *sp;
    std::string name;
    size_t files = 0;
    size_t nodes = 0;
    {
      std::unique_lock lock(s.mu);
      name = s.record.name;
      UPFS_RETURN_IF_ERROR(s.CheckOpen());
      for (const auto& [id, n] : s.nodes) files += n.is_dir ? 0 : 1;
      s.state = SessionState::kFinishing;
      s.writes_done.wait(lock, [&] { return s.writes_in_flight == 0; });
      nodes = s.nodes.size();
    }
    // The tree cannot change while kFinishing, so `files` stays true. At
    // most files + 1 lines are parsed: memory stays that of the text
    // however many lines a wrong manifest has (ParseManifest).
    auto parsed = ParseManifest(manifest_text, files + 1);
    Status st = parsed.ok() ? VerifyAndCommit(sp, std::move(*parsed), info)
                            : parsed.status().WithContext("session " + Quote(name));
    {
      std::lock_guard lock(s.mu);
      if (!st.ok()) {
        s.state = SessionState::kOpen;
        s.last_error = st.message();
        s.last_activity_ns = Now();
      }
    }
    if (nodes >= kTrimAfterNodes) ReturnFreeMemory();
    return st;
  }

  // A finish of many files briefly holds a few KiB per file (the plan, the
  // batch, its encoding). glibc keeps such freed memory in its arenas (one
  // per FUSE thread that allocated it) and RSS stays at the peak; trimming
  // hands the free pages back (measured: README "Other users, expiry and
  // scale"). Not done after small finishes: it walks every arena.
  static void ReturnFreeMemory() {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
  }

  // One node of a session being finished: its path and the index entry it
  // becomes, built once and moved into the commit batch (a session of many
  // files holds all of these at once, so nothing is kept twice).
  struct Planned {
    std::string path;
    std::shared_ptr<FileState> file;  // null for directories
    AssetEntry entry;
  };

  // Takes the manifest to free it (and the lookups built on it) before the
  // commit batch is built: a finish of many files holds all of these.
  Status VerifyAndCommit(const std::shared_ptr<Session>& sp, std::vector<ManifestLine> manifest,
                         CommitInfo* info) {
    Session& s = *sp;
    SessionRecord record;
    uint64_t root_subdirs = 0;
    std::vector<Planned> plan;
    {
      // The session is kFinishing: no write, create, rename or delete runs
      // until it is open again or gone, so this snapshot stays true.
      std::lock_guard lock(s.mu);
      record = s.record;
      root_subdirs = s.root_subdirs;
      plan.reserve(s.nodes.size());
      for (const auto& [id, n] : s.nodes) {
        Planned& p = plan.emplace_back();
        p.path = s.PathOf(id);
        p.file = n.file;
        AssetEntry& e = p.entry;
        e.asset = record.name;
        size_t slash = p.path.rfind('/');
        e.dir = slash == std::string::npos ? "" : p.path.substr(0, slash);
        e.name = n.name;
        e.id = id;
        e.is_dir = n.is_dir;
        e.mode = n.mode;
        e.uid = n.uid;
        e.gid = n.gid;
        e.atime_ns = n.atime_ns;
        e.mtime_ns = n.dir_mtime_ns;  // files: set once verified
        e.ctime_ns = n.dir_ctime_ns;
        e.subdirs = n.subdirs;
        e.xattrs = n.xattrs;
      }
    }
    std::sort(plan.begin(), plan.end(), [](const Planned& a, const Planned& b) { return a.path < b.path; });
    const std::string where = "session " + Quote(record.name);

    // 1. The manifest names exactly the session's files, once each.
    std::unordered_map<std::string_view, Planned*> by_path;
    for (Planned& p : plan) by_path.emplace(p.path, &p);
    std::unordered_map<std::string_view, const ManifestLine*> listed;
    for (const ManifestLine& line : manifest) {
      auto it = by_path.find(line.path);
      if (it == by_path.end()) {
        return Status::InvalidArgument(where + ": manifest line " + std::to_string(line.line_number) +
                                       " names " + Quote(line.path) + ", which is not a file of the session");
      }
      if (it->second->entry.is_dir) {
        return Status::InvalidArgument(where + ": manifest line " + std::to_string(line.line_number) +
                                       " names directory " + Quote(line.path));
      }
      if (!listed.emplace(it->second->path, &line).second) {
        return Status::InvalidArgument(where + ": manifest line " + std::to_string(line.line_number) +
                                       " lists " + Quote(line.path) + " a second time");
      }
    }
    if (!manifest.empty()) {
      for (const Planned& p : plan) {
        if (!p.entry.is_dir && !listed.count(p.path)) {
          return Status::InvalidArgument(where + ": file " + Quote(p.path) + " is not listed in the manifest");
        }
      }
    }

    // 2. Every file complete; 3. every hash right.
    uint64_t files = 0, bytes = 0;
    for (Planned& p : plan) {
      if (p.entry.is_dir) continue;
      FileState& f = *p.file;
      std::lock_guard lock(f.mu);
      uint64_t length = f.length.load();
      std::vector<Extent> missing = f.received.Missing(length);
      if (!missing.empty()) {
        uint64_t total = 0;
        for (const Extent& e : missing) total += e.end - e.begin;
        f.SetError("missing bytes " + RangeText(missing[0].begin, missing[0].end) + " of " +
                   std::to_string(length) +
                   (missing.size() > 1 ? " (" + std::to_string(missing.size()) + " ranges, " +
                                             std::to_string(total) + " bytes missing)"
                                       : ""));
        return Status::MissingData(where + " file " + Quote(p.path) + ": " + *f.last_error);
      }
      auto hash = FullHash(f);
      if (!hash.ok()) {
        f.SetError(hash.status().message());
        return hash.status().WithContext(where + " file " + Quote(p.path));
      }
      p.entry.sha256 = std::move(*hash);
      auto line = listed.find(p.path);
      if (line != listed.end() && line->second->sha256 != p.entry.sha256) {
        f.SetError("manifest line " + std::to_string(line->second->line_number) + " expects sha256 " +
                   line->second->sha256 + ", received bytes hash to " + p.entry.sha256);
        return Status::HashMismatch(where + " file " + Quote(p.path) + ": " + *f.last_error);
      }
      f.last_error.reset();
      p.entry.mtime_ns = f.mtime_ns.load();
      p.entry.ctime_ns = f.ctime_ns.load();
      p.entry.length = length;
      ++files;
      bytes += length;
    }

    listed = {};
    by_path = {};
    manifest = {};

    // 4. One atomic, synced write: the asset and its entries in, the
    //    session's records out. The blobs stay where they are.
    int64_t now = Now();
    Batch batch;
    AssetRecord asset;
    asset.name = record.name;
    asset.root_id = record.id;
    asset.uid = record.uid;
    asset.gid = record.gid;
    asset.mode = record.mode;
    asset.atime_ns = record.atime_ns;
    asset.mtime_ns = record.mtime_ns;
    asset.ctime_ns = record.ctime_ns;
    asset.subdirs = root_subdirs;
    asset.committed_ns = now;
    asset.files = files;
    asset.bytes = bytes;
    asset.xattrs = record.xattrs;
    batch.Put(asset);
    std::vector<uint64_t> ids;
    ids.reserve(plan.size());
    for (Planned& p : plan) {
      ids.push_back(p.entry.id);
      batch.Put(std::move(p.entry));
      batch.DeleteNodeRecord(record.id, ids.back());
    }
    plan = {};  // the entries live in the batch now
    // Files unlinked while open are not part of the asset; their bytes go
    // with the session. (No handle can write them while kFinishing; a
    // release may free one meanwhile, and a second delete is harmless.)
    std::vector<uint64_t> unlinked_ids;
    {
      std::lock_guard lock(s.mu);
      for (const auto& [id, n] : s.unlinked) unlinked_ids.push_back(id);
    }
    for (uint64_t id : unlinked_ids) batch.DeleteBlobData(id);
    batch.Delete(record);
    Status st = store->Apply(batch, /*sync=*/true);
    if (!st.ok()) {
      spdlog::error("{}: commit failed, session left open: {}", where, st.ToString());
      return st.WithContext(where + ": commit");
    }

    // Committed and durable. Retire the session from memory.
    ++asset_count;
    sessions_dir_ns = now;
    assets_dir_ns = now;
    {
      std::lock_guard table(table_mu);
      sessions.erase(record.name);
      std::lock_guard lock(s.mu);
      s.state = SessionState::kGone;
      for (auto& [id, n] : s.unlinked) {
        std::lock_guard flock(n.file->mu);
        n.file->removed = true;
        unlinked_ids.push_back(id);
      }
      s.unlinked.clear();
    }
    for (uint64_t id : ids) IndexRemove(id);
    for (uint64_t id : unlinked_ids) IndexRemove(id);
    IndexRemove(record.id);
    IndexRemove(record.id + kFinishOffset);
    IndexRemove(record.id + kStatusOffset);
    spdlog::info("{} committed: {} files, {} bytes", where, files, bytes);
    if (info) {
      info->name = record.name;
      info->session_id = record.id;
    }
    return Status::OK();
  }

  // Deletes a session and all its data in one batch; the caller has marked
  // it kGone. On failure the caller reopens it.
  // GCC 12 reports a false -Wmaybe-uninitialized in std::vector<Batch::Op>
  // growth inlined here (a NodeRecord alternative that is never built).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  Status DropSession(Session& s, bool sync) {
    Batch batch;
    std::vector<uint64_t> unlinked_ids;
    {
      std::lock_guard lock(s.mu);
      for (const auto& [id, n] : s.nodes) {
        batch.DeleteNodeRecord(s.id(), id);
        if (n.file) batch.DeleteBlobData(id);
      }
      batch.Delete(s.record);
      for (const auto& [id, n] : s.unlinked) unlinked_ids.push_back(id);
    }
    for (uint64_t id : unlinked_ids) batch.DeleteBlobData(id);
    UPFS_RETURN_IF_ERROR(store->Apply(batch, sync));
    std::vector<uint64_t> ids;
    std::string name;
    {
      std::lock_guard lock(s.mu);
      for (auto& [id, n] : s.nodes) {
        ids.push_back(id);
        if (n.file) n.file->removed = true;
      }
      for (auto& [id, n] : s.unlinked) {
        ids.push_back(id);
        n.file->removed = true;
      }
      s.unlinked.clear();
      name = s.record.name;
    }
    {
      std::lock_guard table(table_mu);
      auto it = sessions.find(name);
      if (it != sessions.end() && it->second.get() == &s) sessions.erase(it);
    }
    sessions_dir_ns = Now();
    for (uint64_t id : ids) IndexRemove(id);
    IndexRemove(s.id());
    IndexRemove(s.id() + kFinishOffset);
    IndexRemove(s.id() + kStatusOffset);
    return Status::OK();
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  // ---- status ----

  std::string Report(Session& s) {
    std::lock_guard lock(s.mu);
    const SessionRecord& r = s.record;
    std::string out;
    auto line = [&out](std::string_view key, const std::string& value) {
      out += key;
      out += ": ";
      out += value;
      out += '\n';
    };
    const char* state = s.state == SessionState::kOpen ? "open"
                        : s.state == SessionState::kFinishing ? "finishing" : "gone";
    line("session", r.name);
    line("state", state);
    line("owner", std::to_string(r.uid) + ":" + std::to_string(r.gid));
    line("write_once", r.write_once ? "yes" : "no");
    line("created", TimeText(r.created_ns));
    line("last_activity", TimeText(s.last_activity_ns));
    line("expires", s.open_handles > 0 || s.writes_in_flight > 0
                        ? "not while files are open"
                        : TimeText(s.last_activity_ns + options.ttl_ns));
    line("open_handles", std::to_string(s.open_handles));
    std::vector<std::pair<std::string, const Node*>> files;
    for (const auto& [id, n] : s.nodes) {
      if (!n.is_dir) files.emplace_back(s.PathOf(id), &n);
    }
    std::sort(files.begin(), files.end());
    uint64_t total_len = 0, total_rx = 0;
    std::string body;
    for (const auto& [path, n] : files) {
      FileState& f = *n->file;
      std::lock_guard flock(f.mu);
      uint64_t length = f.length.load();
      uint64_t rx = f.received.BytesReceived();
      total_len += length;
      total_rx += rx;
      std::vector<Extent> missing = f.received.Missing(length);
      std::string ranges;
      for (size_t i = 0; i < missing.size() && i < kStatusMaxRanges; ++i) {
        if (i) ranges += ' ';
        ranges += RangeText(missing[i].begin, missing[i].end);
      }
      if (missing.size() > kStatusMaxRanges) {
        ranges += " ... (" + std::to_string(missing.size() - kStatusMaxRanges) + " more)";
      }
      body += "\nfile: " + path + "\n";
      body += "length: " + std::to_string(length) + "\n";
      body += "received: " + std::to_string(rx) + "\n";
      body += "missing: " + (missing.empty() ? std::string("none") : ranges) + "\n";
      bool known = missing.empty() && f.hash.valid() && f.hash.frontier() == length;
      body += "sha256: " + (known ? f.hash.HexDigest() : std::string("pending")) + "\n";
      if (f.last_error) body += "last_error: " + *f.last_error + "\n";
    }
    line("files", std::to_string(files.size()));
    line("bytes_total", std::to_string(total_len));
    line("bytes_received", std::to_string(total_rx));
    line("last_error", s.last_error.empty() ? "none" : s.last_error);
    return out + body;
  }
};

// ===================================================================

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Open(std::unique_ptr<store::Store> store, Options options) {
  auto impl = std::make_unique<Impl>(std::move(store), std::move(options));
  std::vector<SessionRecord> records;
  UPFS_RETURN_IF_ERROR(impl->store->ListSessions(&records));
  int64_t now = impl->Now();
  for (SessionRecord& rec : records) {
    auto s = std::make_shared<Session>();
    s->record = std::move(rec);
    s->last_activity_ns = now;  // the idle timer restarts at mount
    std::vector<NodeRecord> nodes;
    UPFS_RETURN_IF_ERROR(impl->store->ListNodes(s->id(), &nodes));
    uint64_t received_total = 0;
    for (NodeRecord& nr : nodes) {
      Node n;
      n.id = nr.id;
      n.parent = nr.parent;
      n.name = std::move(nr.name);
      n.is_dir = nr.is_dir;
      n.mode = nr.mode;
      n.uid = nr.uid;
      n.gid = nr.gid;
      n.atime_ns = nr.atime_ns;
      n.dir_mtime_ns = nr.mtime_ns;
      n.dir_ctime_ns = nr.ctime_ns;
      n.xattrs = std::move(nr.xattrs);
      if (!n.is_dir) {
        n.file = std::make_shared<FileState>(impl->store.get(), n.id);
        std::vector<Extent> extents;
        Status st = n.file->Blob()->Extents(&extents);
        if (!st.ok()) return st.WithContext("recovering session " + Quote(s->record.name));
        for (const Extent& e : extents) n.file->received.Add(e.begin, e.end);
        n.file->length = std::max(nr.length, n.file->received.End());
        n.file->mtime_ns = nr.mtime_ns;
        n.file->ctime_ns = nr.ctime_ns;
        received_total += n.file->received.BytesReceived();
        // The hash is rebuilt from the store when finish needs it.
        if (n.file->length.load() > 0) n.file->hash.Invalidate();
      }
      s->nodes.emplace(n.id, std::move(n));
    }
    for (auto& [id, n] : s->nodes) {
      auto dir = s->DirChildren(n.parent);
      if (!dir.ok()) {
        spdlog::error("recovering session {}: node {} ({}) has no parent {}; left out", Quote(s->record.name), id,
                      Quote(n.name), n.parent);
        continue;
      }
      (*dir)->emplace(n.name, id);
      if (n.is_dir) ++s->SubdirsOf(n.parent);
    }
    for (const auto& [id, n] : s->nodes) impl->IndexAdd(id, s);
    impl->IndexAdd(s->id(), s);
    impl->IndexAdd(s->id() + kFinishOffset, s);
    impl->IndexAdd(s->id() + kStatusOffset, s);
    spdlog::info("recovered session {}: {} nodes, {} bytes received", Quote(s->record.name), s->nodes.size(),
                 received_total);
    impl->sessions.emplace(s->record.name, std::move(s));
  }
  std::vector<AssetRecord> assets;
  UPFS_RETURN_IF_ERROR(impl->store->ListAssets(&assets));
  impl->asset_count = assets.size();
  impl->sessions_dir_ns = impl->assets_dir_ns = impl->mount_time_ns;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<Attr> Engine::GetAttr(uint64_t id) { return impl_->GetAttr(id); }

Result<Attr> Engine::Lookup(uint64_t parent, std::string_view name) {
  Impl& m = *impl_;
  if (name.size() > kMaxNameLength) return CheckName(name);
  switch (parent) {
    case kRootId:
      if (name == "sessions") return m.GetAttr(kSessionsId);
      if (name == "assets") return m.GetAttr(kAssetsId);
      return Status::NotFound("no " + Quote(name) + " at the mount root");
    case kSessionsId: {
      auto s = m.FindSession(name);
      if (!s) return Status::NotFound("no open session " + Quote(name));
      std::lock_guard lock(s->mu);
      if (s->state == SessionState::kGone) return Status::NotFound("no open session " + Quote(name));
      return Impl::AttrIn(*s, s->id());
    }
    case kAssetsId: {
      AssetRecord r;
      Status st = m.store->GetAsset(name, &r);
      if (st.IsNotFound()) return Status::NotFound("no asset " + Quote(name));
      UPFS_RETURN_IF_ERROR(st);
      return m.RootAttrOf(r);
    }
    default: break;
  }
  if (auto s = m.SessionOf(parent)) {
    std::lock_guard lock(s->mu);
    if (s->state != SessionState::kGone) {
      if (parent == s->id()) {
        if (name == kFinishName) return Impl::AttrIn(*s, s->id() + kFinishOffset);
        if (name == kStatusName) return Impl::AttrIn(*s, s->id() + kStatusOffset);
      }
      auto kind = Impl::KindIn(*s, parent);
      if (!kind.ok()) return kind.status();
      if (!IsDirectoryKind(*kind)) return Status::NotDirectory("not a directory");
      auto children = s->DirChildren(parent);
      if (!children.ok()) return children.status();
      auto it = (*children)->find(name);
      if (it == (*children)->end()) return Status::NotFound("no " + Quote(name) + " in session " + Quote(s->record.name));
      return Impl::AttrIn(*s, it->second);
    }
  }
  auto loc = m.Locate(parent);
  if (!loc.ok()) return loc.status();
  if (!loc->is_root()) {
    auto attr = m.AssetAttr(*loc);
    if (!attr.ok()) return attr.status();
    if (attr->kind != NodeKind::kAssetDir) return Status::NotDirectory("not a directory");
  }
  AssetEntry e;
  Status st = m.store->GetAssetEntry(loc->asset, ChildDir(*loc), name, &e);
  if (st.IsNotFound()) return Status::NotFound("no " + Quote(name) + " in asset " + Quote(loc->asset));
  UPFS_RETURN_IF_ERROR(st);
  return m.EntryAttrOf(e);
}

Result<std::vector<DirEntry>> Engine::ReadDir(uint64_t dir) {
  Impl& m = *impl_;
  std::vector<DirEntry> out;
  switch (dir) {
    case kRootId:
      out.push_back({"assets", kAssetsId, S_IFDIR});
      out.push_back({"sessions", kSessionsId, S_IFDIR});
      return out;
    case kSessionsId: {
      std::lock_guard lock(m.table_mu);
      for (const auto& [name, s] : m.sessions) out.push_back({name, s->id(), S_IFDIR});
      return out;
    }
    case kAssetsId: {
      std::vector<AssetRecord> assets;
      UPFS_RETURN_IF_ERROR(m.store->ListAssets(&assets));
      for (const AssetRecord& a : assets) out.push_back({a.name, a.root_id, S_IFDIR});
      return out;
    }
    default: break;
  }
  if (auto s = m.SessionOf(dir)) {
    std::lock_guard lock(s->mu);
    if (s->state != SessionState::kGone) {
      auto children = s->DirChildren(dir);
      if (!children.ok()) return children.status();
      if (dir == s->id()) {
        out.push_back({std::string(kFinishName), s->id() + kFinishOffset, S_IFREG});
        out.push_back({std::string(kStatusName), s->id() + kStatusOffset, S_IFREG});
      }
      for (const auto& [name, id] : **children) {
        out.push_back({name, id, s->nodes.at(id).is_dir ? uint32_t{S_IFDIR} : uint32_t{S_IFREG}});
      }
      std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
      return out;
    }
  }
  auto loc = m.Locate(dir);
  if (!loc.ok()) return loc.status();
  std::vector<AssetEntry> entries;
  UPFS_RETURN_IF_ERROR(m.store->ListAssetDir(loc->asset, ChildDir(*loc), &entries));
  for (const AssetEntry& e : entries) out.push_back({e.name, e.id, e.is_dir ? uint32_t{S_IFDIR} : uint32_t{S_IFREG}});
  return out;
}

Result<Attr> Engine::Mkdir(uint64_t parent, std::string_view name, uint32_t mode, Caller caller) {
  Impl& m = *impl_;
  UPFS_RETURN_IF_ERROR(CheckName(name));
  int64_t now = m.Now();
  if (parent == kSessionsId) {
    UPFS_RETURN_IF_ERROR(CheckNotControlName(name));
    std::lock_guard table(m.table_mu);
    if (m.sessions.count(name)) return Status::Exists("session " + Quote(name) + " is open");
    AssetRecord existing;
    Status st = m.store->GetAsset(name, &existing);
    if (st.ok()) return Status::Exists("asset " + Quote(name) + " is committed");
    if (!st.IsNotFound()) return st;
    auto s = std::make_shared<Session>();
    SessionRecord& r = s->record;
    r.id = m.store->NewIds(3);  // root, .finish, .status
    r.name = std::string(name);
    r.uid = caller.uid;
    r.gid = caller.gid;
    r.mode = mode & 07777;
    r.created_ns = r.atime_ns = r.mtime_ns = r.ctime_ns = now;
    r.write_once = m.options.write_once_default;
    s->last_activity_ns = now;
    Batch batch;
    batch.Put(r);
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    m.IndexAdd(r.id, s);
    m.IndexAdd(r.id + kFinishOffset, s);
    m.IndexAdd(r.id + kStatusOffset, s);
    spdlog::info("session {} begun by uid {} gid {} (write_once={})", Quote(name), caller.uid, caller.gid,
                 r.write_once);
    Attr attr = Impl::AttrIn(*s, r.id).value();
    m.sessions.emplace(std::string(name), std::move(s));
    m.sessions_dir_ns = now;
    return attr;
  }
  if (parent == kRootId) return Status::NotPermitted("the mount root holds only sessions/ and assets/");
  auto s = m.SessionOf(parent);
  if (!s) {
    // Under assets/ (or a stale id): the committed side never changes.
    return parent == kAssetsId || m.Locate(parent).ok() ? Status::ReadOnly("assets are read-only")
                                                         : Status::NotFound("parent directory is gone");
  }
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  auto children = s->DirChildren(parent);
  if (!children.ok()) return children.status();
  if (parent != s->id()) UPFS_RETURN_IF_ERROR(CheckNotControlName(name));
  if ((parent == s->id() && IsReserved(name)) || (*children)->count(name)) {
    return Status::Exists(Quote(name) + " exists in session " + Quote(s->record.name));
  }
  Node n;
  n.id = m.store->NewIds(1);
  n.parent = parent;
  n.name = std::string(name);
  n.is_dir = true;
  n.mode = mode & 07777;
  n.uid = caller.uid;
  n.gid = caller.gid;
  n.atime_ns = n.dir_mtime_ns = n.dir_ctime_ns = now;
  Batch batch;
  batch.Put(s->id(), n.ToRecord());
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  uint64_t id = n.id;
  (*children)->emplace(n.name, id);
  s->nodes.emplace(id, std::move(n));
  s->StampDir(parent, now);
  ++s->SubdirsOf(parent);
  s->last_activity_ns = now;
  m.IndexAdd(id, s);
  return Impl::AttrIn(*s, id);
}

Result<Attr> Engine::Create(uint64_t parent, std::string_view name, uint32_t mode, Caller caller) {
  Impl& m = *impl_;
  UPFS_RETURN_IF_ERROR(CheckName(name));
  if (parent == kRootId || parent == kSessionsId) {
    return Status::NotPermitted("files live inside a session: sessions/NAME/...");
  }
  auto s = m.SessionOf(parent);
  if (!s) return Status::ReadOnly("assets are read-only");
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  auto children = s->DirChildren(parent);
  if (!children.ok()) return children.status();
  if (parent != s->id()) UPFS_RETURN_IF_ERROR(CheckNotControlName(name));
  if ((parent == s->id() && IsReserved(name)) || (*children)->count(name)) {
    return Status::Exists(Quote(name) + " exists in session " + Quote(s->record.name));
  }
  int64_t now = m.Now();
  Node n;
  n.id = m.store->NewIds(1);
  n.parent = parent;
  n.name = std::string(name);
  n.mode = mode & 07777;
  n.uid = caller.uid;
  n.gid = caller.gid;
  n.file = std::make_shared<FileState>(m.store.get(), n.id);
  n.file->Modified(now);
  n.atime_ns = now;
  Batch batch;
  batch.Put(s->id(), n.ToRecord());
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  uint64_t id = n.id;
  (*children)->emplace(n.name, id);
  s->nodes.emplace(id, std::move(n));
  s->StampDir(parent, now);
  s->last_activity_ns = now;
  m.IndexAdd(id, s);
  return Impl::AttrIn(*s, id);
}

Status Engine::Unlink(uint64_t parent, std::string_view name) {
  Impl& m = *impl_;
  if (parent == kRootId || parent == kSessionsId) return Status::IsDirectory(Quote(name) + " is a directory");
  auto s = m.SessionOf(parent);
  if (!s) return Status::ReadOnly("assets are read-only");
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  // The control files always exist; removing them is a no-op so that
  // `rm -r sessions/NAME` can abort a session.
  if (parent == s->id() && IsReserved(name)) return Status::OK();
  auto children = s->DirChildren(parent);
  if (!children.ok()) return children.status();
  auto it = (*children)->find(name);
  if (it == (*children)->end()) return Status::NotFound("no " + Quote(name));
  uint64_t id = it->second;
  Node& n = s->nodes.at(id);
  if (n.is_dir) return Status::IsDirectory(Quote(name) + " is a directory");
  const int64_t now = m.Now();
  Batch batch;
  const bool still_open = Impl::AddFileRemoval(*s, n, &batch);
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.ApplyFileRemoval(*n.file, batch, still_open));
  n.SetCtime(now);  // its link count changed (fstat through a handle still open shows it)
  (*children)->erase(it);
  m.AfterFileRemoval(*s, id, still_open);
  s->StampDir(parent, now);
  s->last_activity_ns = now;
  return Status::OK();
}

Status Engine::Rmdir(uint64_t parent, std::string_view name) {
  Impl& m = *impl_;
  if (parent == kRootId) return Status::NotPermitted("sessions/ and assets/ cannot be removed");
  if (parent == kSessionsId) {
    auto s = m.FindSession(name);
    if (!s) return Status::NotFound("no open session " + Quote(name));
    {
      std::lock_guard lock(s->mu);
      UPFS_RETURN_IF_ERROR(s->CheckOpen());
      if (!s->children.empty()) return Status::NotEmpty("session " + Quote(name) + " still has files");
      s->state = SessionState::kGone;
    }
    Status st = m.DropSession(*s, /*sync=*/false);
    if (!st.ok()) {
      std::lock_guard lock(s->mu);
      s->state = SessionState::kOpen;
      return st.WithContext("aborting session " + Quote(name));
    }
    spdlog::info("session {} aborted", Quote(name));
    return Status::OK();
  }
  auto s = m.SessionOf(parent);
  if (!s) return Status::ReadOnly("assets are read-only");
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  auto children = s->DirChildren(parent);
  if (!children.ok()) return children.status();
  auto it = (*children)->find(name);
  if (it == (*children)->end()) return Status::NotFound("no " + Quote(name));
  uint64_t id = it->second;
  Node& n = s->nodes.at(id);
  if (!n.is_dir) return Status::NotDirectory(Quote(name) + " is not a directory");
  if (n.HasChildren()) return Status::NotEmpty(Quote(name) + " is not empty");
  const int64_t now = m.Now();
  Batch batch;
  batch.DeleteNodeRecord(s->id(), id);
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  (*children)->erase(it);
  s->nodes.erase(id);
  m.IndexRemove(id);
  s->StampDir(parent, now);
  --s->SubdirsOf(parent);
  s->last_activity_ns = now;
  return Status::OK();
}

Status Engine::Rename(uint64_t parent, std::string_view name, uint64_t new_parent, std::string_view new_name,
                      bool no_replace, CommitInfo* committed) {
  Impl& m = *impl_;
  UPFS_RETURN_IF_ERROR(CheckName(new_name));
  if (parent == kSessionsId && new_parent == kAssetsId) {
    // Moving a session into assets/ commits it, as an empty manifest would.
    if (name != new_name) {
      return Status::InvalidArgument("a session commits under its own name: mv sessions/" + std::string(name) +
                                     " assets/");
    }
    auto s = m.FindSession(name);
    if (!s) return Status::NotFound("no open session " + Quote(name));
    return m.FinishSession(s, "", committed);
  }
  if (parent == kSessionsId && new_parent == kSessionsId) {
    if (name == new_name) return Status::OK();
    UPFS_RETURN_IF_ERROR(CheckNotControlName(new_name));
    std::lock_guard table(m.table_mu);
    auto it = m.sessions.find(name);
    if (it == m.sessions.end()) return Status::NotFound("no open session " + Quote(name));
    if (m.sessions.count(new_name)) return Status::Exists("session " + Quote(new_name) + " is open");
    AssetRecord existing;
    if (m.store->GetAsset(new_name, &existing).ok()) return Status::Exists("asset " + Quote(new_name) + " exists");
    std::shared_ptr<Session> s = it->second;
    std::lock_guard lock(s->mu);
    UPFS_RETURN_IF_ERROR(s->CheckOpen());
    SessionRecord renamed = s->record;
    renamed.name = std::string(new_name);
    const int64_t now = m.Now();
    renamed.ctime_ns = now;
    Batch batch;
    batch.Delete(s->record);
    batch.Put(renamed);
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    spdlog::info("session {} renamed to {}", Quote(name), Quote(new_name));
    s->record = std::move(renamed);
    m.sessions.erase(it);
    m.sessions.emplace(std::string(new_name), std::move(s));
    m.sessions_dir_ns = now;
    return Status::OK();
  }
  auto fixed = [](uint64_t id) { return id == kRootId || id == kSessionsId || id == kAssetsId; };
  auto src = fixed(parent) ? nullptr : m.SessionOf(parent);
  auto dst = fixed(new_parent) ? nullptr : m.SessionOf(new_parent);
  if (!src || !dst) {
    // Anything renamed out of, into or within assets/ is a change to the
    // committed side.
    if (parent == kAssetsId || new_parent == kAssetsId || (!fixed(new_parent) && !dst)) {
      return Status::ReadOnly("assets are read-only");
    }
    if (!fixed(parent) && !src) return Status::ReadOnly("assets are read-only");
    return Status::NotPermitted("only whole sessions move between sessions/ and assets/");
  }
  if (src != dst) return Status::CrossSession("rename between sessions");
  Session& s = *src;
  std::lock_guard lock(s.mu);
  UPFS_RETURN_IF_ERROR(s.CheckOpen());
  if ((parent == s.id() && IsReserved(name)) || (new_parent == s.id() && IsReserved(new_name))) {
    return Status::NotPermitted(".finish and .status cannot be renamed or replaced");
  }
  if (new_parent != s.id()) UPFS_RETURN_IF_ERROR(CheckNotControlName(new_name));
  auto from = s.DirChildren(parent);
  if (!from.ok()) return from.status();
  auto to = s.DirChildren(new_parent);
  if (!to.ok()) return to.status();
  auto it = (*from)->find(name);
  if (it == (*from)->end()) return Status::NotFound("no " + Quote(name));
  uint64_t id = it->second;
  Node& n = s.nodes.at(id);
  if (n.is_dir) {
    // A directory cannot move into its own subtree.
    for (uint64_t p = new_parent; p != s.id(); p = s.nodes.at(p).parent) {
      if (p == id) return Status::InvalidArgument("cannot move a directory into itself");
    }
  }
  Batch batch;
  Node* victim = nullptr;
  bool victim_open = false;
  auto target = (*to)->find(new_name);
  if (target != (*to)->end()) {
    if (target->second == id) return Status::OK();
    if (no_replace) return Status::Exists(Quote(new_name) + " exists");
    victim = &s.nodes.at(target->second);
    if (victim->is_dir && !n.is_dir) return Status::IsDirectory(Quote(new_name) + " is a directory");
    if (!victim->is_dir && n.is_dir) return Status::NotDirectory(Quote(new_name) + " is not a directory");
    if (victim->is_dir && victim->HasChildren()) return Status::NotEmpty(Quote(new_name) + " is not empty");
    if (victim->file) {
      victim_open = Impl::AddFileRemoval(s, *victim, &batch);
    } else {
      batch.DeleteNodeRecord(s.id(), victim->id);
    }
  }
  // Linux sets the ctime of the node renamed and the mtime and ctime of
  // both directories.
  const int64_t now = m.Now();
  NodeRecord moved = n.ToRecord();
  moved.parent = new_parent;
  moved.name = std::string(new_name);
  moved.ctime_ns = now;
  batch.Put(s.id(), moved);
  s.AddDirStamp(parent, now, &batch);
  if (new_parent != parent) s.AddDirStamp(new_parent, now, &batch);
  if (victim && victim->file) {
    UPFS_RETURN_IF_ERROR(m.ApplyFileRemoval(*victim->file, batch, victim_open));
  } else {
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  }
  if (victim) {
    uint64_t vid = victim->id;
    (*to)->erase(target);
    if (victim->file) {
      victim->SetCtime(now);
      m.AfterFileRemoval(s, vid, victim_open);
    } else {
      s.nodes.erase(vid);
      m.IndexRemove(vid);
      --s.SubdirsOf(new_parent);
    }
  }
  (*from)->erase(it);  // still valid: erasing `target` leaves other map iterators alone
  (*to)->emplace(std::string(new_name), id);
  n.parent = new_parent;
  n.name = std::string(new_name);
  n.SetCtime(now);
  if (n.is_dir) {
    --s.SubdirsOf(parent);
    ++s.SubdirsOf(new_parent);
  }
  s.StampDir(parent, now);
  s.StampDir(new_parent, now);
  s.last_activity_ns = now;
  return Status::OK();
}

Result<Attr> Engine::SetAttr(uint64_t id, const AttrChange& change, Credentials* caller) {
  Impl& m = *impl_;
  if (id == kRootId || id == kSessionsId || id == kAssetsId) {
    return Status::NotPermitted("the mount's fixed directories cannot change");
  }
  auto s = m.SessionOf(id);
  if (!s) {
    auto loc = m.Locate(id);
    if (!loc.ok()) return loc.status();
    return Status::ReadOnly("assets are read-only");
  }
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  auto kind = Impl::KindIn(*s, id);
  if (!kind.ok()) return kind.status();
  int64_t now = m.Now();
  s->last_activity_ns = now;
  switch (*kind) {
    case NodeKind::kFinish:
      // touch(1) sets times and a shell's `>` may truncate before writing
      // the manifest: accepted, and nothing to store (the manifest lives in
      // the writing handle). Anything else would be a lie to accept.
      if (change.mode || change.uid || change.gid) {
        return Status::NotPermitted(".finish's mode and owner are fixed");
      }
      if (change.size && *change.size != 0) {
        return Status::InvalidArgument(".finish can only be truncated to 0; write the manifest into it");
      }
      return Impl::AttrIn(*s, id);
    case NodeKind::kStatus:
      return Status::ReadOnly(".status is read-only");
    case NodeKind::kSessionRoot: {
      if (change.size) return Status::IsDirectory("session directory");
      SessionRecord r = s->record;
      if (change.mode) r.mode = *change.mode & 07777;
      if (change.uid) r.uid = *change.uid;
      if (change.gid) r.gid = *change.gid;
      if (change.atime_ns) r.atime_ns = *change.atime_ns;
      if (change.mtime_ns) r.mtime_ns = *change.mtime_ns;
      r.ctime_ns = now;
      Batch batch;
      batch.Put(r);
      UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
      s->record = std::move(r);
      return Impl::AttrIn(*s, id);
    }
    default: break;
  }
  Node& n = s->NodeAt(id);
  if (change.size) {
    if (n.is_dir) return Status::IsDirectory(Quote(n.name) + " is a directory");
    // The kernel clears setuid itself with this change, but setgid only
    // with group-execute: the rule for a caller outside the group is ours.
    if (caller) UPFS_RETURN_IF_ERROR(m.ClearSetid(*s, n, *caller, "truncate"));
    Status st = m.TruncateFile(*s, n, *change.size);
    if (!st.ok()) return st.WithContext(s->Where(id) + " truncate to " + std::to_string(*change.size));
  }
  // Every other change (even one of ctime alone, as the kernel may send)
  // sets ctime to now, as notify_change does.
  if (change.mode || change.uid || change.gid || change.atime_ns || change.mtime_ns || !change.size) {
    NodeRecord rec = n.ToRecord();
    if (change.mode) rec.mode = *change.mode & 07777;
    if (change.uid) rec.uid = *change.uid;
    if (change.gid) rec.gid = *change.gid;
    if (change.atime_ns) rec.atime_ns = *change.atime_ns;
    if (change.mtime_ns) rec.mtime_ns = *change.mtime_ns;
    rec.ctime_ns = now;
    Batch batch;
    if (!s->IsUnlinked(id)) batch.Put(s->id(), rec);  // unlinked: no record, memory only
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    n.mode = rec.mode;
    n.uid = rec.uid;
    n.gid = rec.gid;
    n.atime_ns = rec.atime_ns;
    if (n.file) {
      // Only what changed: a write may have moved the mtime since `rec`.
      if (change.mtime_ns) n.file->mtime_ns = *change.mtime_ns;
    } else {
      n.dir_mtime_ns = rec.mtime_ns;
    }
    n.SetCtime(now);
  }
  return Impl::AttrIn(*s, id);
}

Status Engine::SetXattr(uint64_t id, std::string_view name, std::string_view value) {
  Impl& m = *impl_;
  auto s = m.SessionOf(id);
  if (!s) {
    if (id == kRootId || id == kSessionsId) return Status::NotPermitted("no extended attributes here");
    return Status::ReadOnly("assets are read-only");
  }
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  auto kind = Impl::KindIn(*s, id);
  if (!kind.ok()) return kind.status();
  if (*kind == NodeKind::kFinish || *kind == NodeKind::kStatus) {
    return Status::NotPermitted("control files have no extended attributes");
  }
  if (*kind == NodeKind::kSessionRoot && name == kWriteOnceXattr) {
    if (value != "0" && value != "1") {
      return Status::InvalidArgument(std::string(kWriteOnceXattr) + " takes \"0\" or \"1\"");
    }
    SessionRecord r = s->record;
    r.write_once = value == "1";
    r.ctime_ns = m.Now();
    Batch batch;
    batch.Put(r);
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    s->record = std::move(r);
    spdlog::info("session {}: write_once={}", Quote(s->record.name), s->record.write_once);
    return Status::OK();
  }
  UPFS_RETURN_IF_ERROR(CheckXattrName(name));
  if (value.size() > kMaxXattrValue) return Status::TooLarge("extended attribute value over 64 KiB");
  return m.EditXattrs(*s, id, *kind, [&](Xattrs& x) { x[std::string(name)] = std::string(value); });
}

Result<std::string> Engine::GetXattr(uint64_t id, std::string_view name) {
  Impl& m = *impl_;
  auto absent = [&] { return Status::NoAttribute("no extended attribute " + Quote(name)); };
  if (auto s = m.SessionOf(id)) {
    std::lock_guard lock(s->mu);
    if (s->state != SessionState::kGone) {
      auto kind = Impl::KindIn(*s, id);
      if (!kind.ok()) return kind.status();
      const Xattrs* xattrs = nullptr;
      if (*kind == NodeKind::kSessionRoot) {
        if (name == kWriteOnceXattr) return std::string(s->record.write_once ? "1" : "0");
        xattrs = &s->record.xattrs;
      } else if (*kind == NodeKind::kDir || *kind == NodeKind::kFile) {
        xattrs = &s->NodeAt(id).xattrs;
      }
      if (!xattrs) return absent();
      auto it = xattrs->find(std::string(name));
      if (it == xattrs->end()) return absent();
      return it->second;
    }
  }
  if (id == kRootId || id == kSessionsId || id == kAssetsId) return absent();
  auto loc = m.Locate(id);
  if (!loc.ok()) return loc.status();
  Xattrs xattrs;
  if (loc->is_root()) {
    AssetRecord r;
    UPFS_RETURN_IF_ERROR(m.store->GetAsset(loc->asset, &r));
    xattrs = std::move(r.xattrs);
  } else {
    AssetEntry e;
    UPFS_RETURN_IF_ERROR(m.store->GetAssetEntry(loc->asset, loc->dir, loc->name, &e));
    if (!e.is_dir && name == kSha256Xattr) return e.sha256;
    xattrs = std::move(e.xattrs);
  }
  auto it = xattrs.find(std::string(name));
  if (it == xattrs.end()) return absent();
  return it->second;
}

Result<std::vector<std::string>> Engine::ListXattr(uint64_t id) {
  Impl& m = *impl_;
  std::vector<std::string> names;
  if (auto s = m.SessionOf(id)) {
    std::lock_guard lock(s->mu);
    if (s->state != SessionState::kGone) {
      auto kind = Impl::KindIn(*s, id);
      if (!kind.ok()) return kind.status();
      if (*kind == NodeKind::kSessionRoot) {
        names.emplace_back(kWriteOnceXattr);
        for (const auto& [k, v] : s->record.xattrs) names.push_back(k);
      } else if (*kind == NodeKind::kDir || *kind == NodeKind::kFile) {
        for (const auto& [k, v] : s->NodeAt(id).xattrs) names.push_back(k);
      }
      return names;
    }
  }
  if (id == kRootId || id == kSessionsId || id == kAssetsId) return names;
  auto loc = m.Locate(id);
  if (!loc.ok()) return loc.status();
  if (loc->is_root()) {
    AssetRecord r;
    UPFS_RETURN_IF_ERROR(m.store->GetAsset(loc->asset, &r));
    for (const auto& [k, v] : r.xattrs) names.push_back(k);
  } else {
    AssetEntry e;
    UPFS_RETURN_IF_ERROR(m.store->GetAssetEntry(loc->asset, loc->dir, loc->name, &e));
    if (!e.is_dir) names.emplace_back(kSha256Xattr);
    for (const auto& [k, v] : e.xattrs) names.push_back(k);
  }
  return names;
}

Status Engine::RemoveXattr(uint64_t id, std::string_view name) {
  Impl& m = *impl_;
  auto s = m.SessionOf(id);
  if (!s) {
    if (id == kRootId || id == kSessionsId) return Status::NotPermitted("no extended attributes here");
    return Status::ReadOnly("assets are read-only");
  }
  std::lock_guard lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  auto kind = Impl::KindIn(*s, id);
  if (!kind.ok()) return kind.status();
  if (*kind == NodeKind::kSessionRoot && name == kWriteOnceXattr) {
    return Status::NotPermitted("set " + std::string(kWriteOnceXattr) + " to 0 instead");
  }
  Xattrs* xattrs = *kind == NodeKind::kSessionRoot ? &s->record.xattrs
                   : (*kind == NodeKind::kDir || *kind == NodeKind::kFile) ? &s->NodeAt(id).xattrs
                                                                            : nullptr;
  if (!xattrs || !xattrs->count(std::string(name))) return Status::NoAttribute("no extended attribute " + Quote(name));
  return m.EditXattrs(*s, id, *kind, [&](Xattrs& x) { x.erase(std::string(name)); });
}

Result<uint64_t> Engine::Open(uint64_t id, OpenMode mode, Credentials* opener) {
  Impl& m = *impl_;
  auto h = std::make_shared<Handle>();
  h->id = id;
  if (auto s = m.SessionOf(id)) {
    std::unique_lock lock(s->mu);
    if (s->state == SessionState::kGone) return s->CheckOpen();
    auto kind = Impl::KindIn(*s, id);
    if (!kind.ok()) return kind.status();
    h->kind = *kind;
    h->session = s;
    switch (*kind) {
      case NodeKind::kFinish:
        if (mode.read) return Status::PermissionDenied(".finish is write-only: write a manifest into it");
        UPFS_RETURN_IF_ERROR(s->CheckOpen());
        break;
      case NodeKind::kStatus:
        if (mode.write) return Status::ReadOnly(".status is read-only");
        lock.unlock();
        h->text = m.Report(*s);
        lock.lock();
        break;
      case NodeKind::kFile: {
        Node& n = s->NodeAt(id);
        h->file = n.file;
        if (mode.write || mode.truncate) UPFS_RETURN_IF_ERROR(s->CheckOpen());
        // open(O_TRUNC) clears setuid/setgid as truncate(2) does, even of
        // an empty file (the kernel does not send that change itself when
        // the open truncates: FUSE_CAP_ATOMIC_O_TRUNC).
        if (mode.truncate && opener) UPFS_RETURN_IF_ERROR(m.ClearSetid(*s, n, *opener, "open(O_TRUNC)"));
        if (mode.truncate && n.file->length.load() > 0) {
          Status st = m.TruncateFile(*s, n, 0);
          if (!st.ok()) return st.WithContext(s->Where(id) + " O_TRUNC");
        }
        ++n.file->handles;
        break;
      }
      default:
        return Status::IsDirectory("directories are not opened as files");
    }
    // Reading .status only looks: it neither touches the session nor keeps
    // it from expiring, so a monitor polling .status does not keep an
    // abandoned upload alive (its handle holds a snapshot, not the session).
    if (*kind != NodeKind::kStatus) {
      ++s->open_handles;
      s->last_activity_ns = m.Now();
    }
  } else {
    auto entry = m.AssetEntryOf(id);
    if (!entry.ok()) return entry.status();
    if (entry->is_dir) return Status::IsDirectory("directory");
    if (mode.write || mode.truncate) return Status::ReadOnly("assets are read-only");
    h->kind = NodeKind::kAssetFile;
    h->asset_blob = m.store->OpenCommittedBlob(entry->id);
    h->asset_length = entry->length;
  }
  std::lock_guard lock(m.handles_mu);
  uint64_t handle = m.next_handle++;
  m.handles.emplace(handle, std::move(h));
  return handle;
}

Status Engine::Flush(uint64_t id, uint64_t handle, CommitInfo* committed) {
  auto h = impl_->FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  if (h->kind != NodeKind::kFinish) return Status::OK();
  std::lock_guard lock(h->mu);
  if (!h->commit_result) {
    h->commit_result = impl_->FinishSession(h->session, h->text, committed);
    if (h->commit_result->ok() && committed) h->commit_info = *committed;
  }
  return *h->commit_result;
}

Status Engine::Release(uint64_t id, uint64_t handle) {
  Impl& m = *impl_;
  std::shared_ptr<Handle> h;
  {
    std::lock_guard lock(m.handles_mu);
    auto it = m.handles.find(handle);
    if (it == m.handles.end() || it->second->id != id) return Status::InvalidArgument("unknown file handle");
    h = std::move(it->second);
    m.handles.erase(it);
  }
  Status st;
  if (h->kind == NodeKind::kFinish) {
    std::lock_guard lock(h->mu);
    if (!h->commit_result) h->commit_result = m.FinishSession(h->session, h->text, nullptr);
    st = *h->commit_result;
  }
  if (h->session && h->kind != NodeKind::kStatus) {
    Session& s = *h->session;
    std::lock_guard lock(s.mu);
    --s.open_handles;
    s.last_activity_ns = m.Now();
    if (h->file && --h->file->handles == 0 && s.IsUnlinked(id)) m.FreeUnlinked(s, id);
  }
  return st;
}

Result<size_t> Engine::Write(uint64_t id, uint64_t handle, uint64_t offset, std::string_view data,
                             Credentials* writer) {
  Impl& m = *impl_;
  auto h = m.FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  switch (h->kind) {
    case NodeKind::kFile:
      // POSIX: a write crossing the largest file size writes the bytes
      // below it and returns the short count; only a write starting at or
      // past it fails (EFBIG). The kernel splits buffered writes at a page
      // boundary itself, but direct_io writes arrive whole.
      if (offset < store::kMaxBlobLength && data.size() > store::kMaxBlobLength - offset) {
        data = data.substr(0, store::kMaxBlobLength - offset);
      }
      UPFS_RETURN_IF_ERROR(m.WriteFile(*h->session, id, *h->file, offset, data, writer));
      return data.size();
    case NodeKind::kFinish: {
      std::lock_guard lock(h->mu);
      if (h->commit_result) {
        return h->commit_result->ok() ? Status::Stale("this .finish handle already ran its commit")
                                      : *h->commit_result;
      }
      Status refused;
      if (offset > kMaxManifestBytes || data.size() > kMaxManifestBytes - offset) {
        refused = Status::TooLarge("manifest larger than " + std::to_string(kMaxManifestBytes >> 20) + " MiB");
      } else if (offset > h->text.size()) {
        // A manifest is text written in order (rewrites are fine). A write
        // past its end would make a hole of NULs that no manifest holds,
        // and would cost memory for bytes never sent.
        refused = Status::InvalidArgument("a write at offset " + std::to_string(offset) +
                                          " of .finish leaves a hole after its " + std::to_string(h->text.size()) +
                                          " bytes: write the manifest in order");
      }
      if (!refused.ok()) {
        // The manifest this handle holds is not the one the client meant:
        // its close must fail too, never commit what did arrive (or, with
        // nothing written, commit as an empty manifest would).
        h->commit_result = refused.WithContext("nothing committed: a write to .finish failed");
        return refused;
      }
      if (h->text.size() < offset + data.size()) h->text.resize(offset + data.size());
      std::memcpy(h->text.data() + offset, data.data(), data.size());
      return data.size();
    }
    case NodeKind::kStatus: return Status::ReadOnly(".status is read-only");
    default: return Status::ReadOnly("assets are read-only");
  }
}

Result<std::string> Engine::Read(uint64_t id, uint64_t handle, uint64_t offset, size_t size) {
  Impl& m = *impl_;
  auto h = m.FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  std::unique_ptr<store::ByteSink> file_blob;
  const store::ByteSink* sink = nullptr;
  uint64_t length = 0;
  switch (h->kind) {
    case NodeKind::kFile: {
      std::lock_guard lock(h->session->mu);
      if (h->session->state == SessionState::kGone) return h->session->CheckOpen();
      if (h->file->removed) return Status::Stale("file was removed");
      file_blob = h->file->Blob();
      sink = file_blob.get();
      length = h->file->length.load();
      break;
    }
    case NodeKind::kStatus: {
      std::lock_guard lock(h->mu);
      if (offset >= h->text.size()) return std::string();
      return h->text.substr(offset, size);
    }
    case NodeKind::kFinish: return Status::PermissionDenied(".finish is write-only");
    case NodeKind::kAssetFile:
      sink = h->asset_blob.get();
      length = h->asset_length;
      break;
    default: return Status::IsDirectory("directory");
  }
  if (offset >= length) return std::string();
  size_t n = static_cast<size_t>(std::min<uint64_t>(size, length - offset));
  std::string out(n, '\0');
  Status st = h->kind == NodeKind::kAssetFile ? m.asset_reads.Read(id, *sink, length, offset, n, out.data())
                                              : sink->ReadAt(offset, n, out.data());
  if (!st.ok()) return st.WithContext("read of id " + std::to_string(id) + " at offset " + std::to_string(offset));
  return out;
}

Status Engine::Finish(std::string_view name, std::string_view manifest, CommitInfo* committed) {
  auto s = impl_->FindSession(name);
  if (!s) return Status::NotFound("no open session " + Quote(name));
  return impl_->FinishSession(s, manifest, committed);
}

std::vector<std::string> Engine::ExpireIdle() {
  Impl& m = *impl_;
  int64_t now = m.Now();
  std::vector<std::shared_ptr<Session>> doomed;
  {
    std::lock_guard table(m.table_mu);
    for (const auto& [name, s] : m.sessions) {
      std::lock_guard lock(s->mu);
      // Never a session in use: open handles, writes in flight, a finish
      // running, or activity within the TTL.
      if (s->state != SessionState::kOpen || s->open_handles > 0 || s->writes_in_flight > 0) continue;
      if (now - s->last_activity_ns < m.options.ttl_ns) continue;
      s->state = SessionState::kGone;
      doomed.push_back(s);
    }
  }
  std::vector<std::string> expired;
  for (const auto& s : doomed) {
    std::string name;
    {
      std::lock_guard lock(s->mu);
      name = s->record.name;
    }
    Status st = m.DropSession(*s, /*sync=*/false);
    if (!st.ok()) {
      std::lock_guard lock(s->mu);
      s->state = SessionState::kOpen;
      spdlog::error("expiring session {} failed, kept: {}", Quote(name), st.ToString());
      continue;
    }
    spdlog::info("session {} expired after {} s idle", Quote(name), m.options.ttl_ns / 1000000000);
    expired.push_back(std::move(name));
  }
  if (!expired.empty()) {
    // The store knows which blobs were freed; one compaction for the sweep.
    Status st = m.store->Compact();
    if (!st.ok()) spdlog::warn("compaction after expiry failed: {}", st.ToString());
  }
  return expired;
}

Result<std::string> Engine::StatusReport(std::string_view name) {
  auto s = impl_->FindSession(name);
  if (!s) return Status::NotFound("no open session " + Quote(name));
  return impl_->Report(*s);
}

Engine::Usage Engine::GetUsage() {
  Usage u;
  {
    std::lock_guard lock(impl_->table_mu);
    u.sessions = impl_->sessions.size();
  }
  u.assets = impl_->asset_count.load();
  return u;
}

}  // namespace upfs::session
