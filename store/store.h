// Store: everything the session engine keeps durably, behind one narrow,
// backend-neutral interface.
//
// What is stored:
//   * blobs: byte-addressed file contents, written at any offset through a
//     ByteSink; a blob's id is the id of the session file that owns it.
//   * session records and node records (files and directories of open
//     sessions), so sessions survive restarts;
//   * the asset index: one AssetRecord per committed session and one
//     AssetEntry per committed file or directory, found by path or by id.
//
// Durability: Apply(batch, sync=true) is atomic and durable when it
// returns, and makes every earlier write (chunks included) durable too.
// Unsynced writes may be lost in a machine crash, but never out of order:
// a write that survived implies every earlier write survived.
//
// Backends: LevelDB (store/leveldb_kv.h, the embedded default) and an
// in-memory one for tests, both through KvStore (store/kv_store.h). A
// RADOS backend would implement Store directly: blobs as objects, records
// as omap entries, Batch as one write op. Nothing here names LevelDB.
//
// Thread safety: a Store may be used from any number of threads. A
// ByteSink's writes must be serialized by the caller (the session engine
// holds the file's lock); its reads may run concurrently with anything.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace upfs::store {

// Largest byte offset + 1 a blob may hold: 2^62. Far beyond any real file,
// and keeps offset arithmetic free of overflow.
inline constexpr uint64_t kMaxBlobLength = uint64_t{1} << 62;

using Xattrs = std::map<std::string, std::string>;

// A half-open byte range [begin, end) of a blob.
struct Extent {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool operator==(const Extent&) const = default;
};

// Ids a session takes from NewIds, one block: its own id (also its root
// directory's), then its `.finish` and `.status` files. A committed asset
// keeps the block (its root_id is the session's id), so every id in
// [id, id + kIdsPerSession) is in use while the session or asset exists.
inline constexpr uint64_t kIdsPerSession = 3;

struct SessionRecord {
  uint64_t id = 0;  // also the id of the session's root directory
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0755;  // permission bits of the session directory
  int64_t created_ns = 0;
  int64_t mtime_ns = 0;
  bool write_once = false;
  Xattrs xattrs;
  int64_t atime_ns = 0;  // set only explicitly (utimensat): reads do not update it
  int64_t ctime_ns = 0;
};

// A file or directory inside an open session. For a file, the blob id is
// the node id.
struct NodeRecord {
  uint64_t id = 0;
  uint64_t parent = 0;  // a node id, or the session id for top-level nodes
  std::string name;
  bool is_dir = false;
  uint32_t mode = 0644;  // permission bits only
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  int64_t atime_ns = 0;  // set only explicitly (utimensat): reads do not update it
  int64_t ctime_ns = 0;
  // For files: the length last set by create or truncate. Writes extend a
  // file without rewriting this record; recovery takes the larger of this
  // and the end of the blob's last extent.
  uint64_t length = 0;
  Xattrs xattrs;
};

struct AssetRecord {
  std::string name;
  uint64_t root_id = 0;  // id of the asset's root directory
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mode = 0755;
  int64_t mtime_ns = 0;
  int64_t committed_ns = 0;
  uint64_t files = 0;
  uint64_t bytes = 0;
  Xattrs xattrs;
  int64_t atime_ns = 0;
  int64_t ctime_ns = 0;
  // Directories directly inside the root (its link count is 2 + this).
  // kUnknownCount in records written before the field existed.
  uint64_t subdirs = 0;
};

// A count that a record written by an older upfs did not hold.
inline constexpr uint64_t kUnknownCount = UINT64_MAX;

// One committed file or directory. Its place is (asset, dir, name): dir is
// the slash-separated path of its parent relative to the asset root ("" for
// top-level entries).
struct AssetEntry {
  std::string asset;
  std::string dir;
  std::string name;
  uint64_t id = 0;  // == blob id for files
  bool is_dir = false;
  uint32_t mode = 0644;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_ns = 0;
  uint64_t length = 0;
  std::string sha256;  // lowercase hex; empty for directories
  Xattrs xattrs;
  int64_t atime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t subdirs = 0;  // directories: subdirectories directly inside (or kUnknownCount)

  // dir + "/" + name, or name at top level.
  std::string Path() const { return dir.empty() ? name : dir + "/" + name; }
};

// Where an id lives on the committed side: the asset root (dir and name
// empty) or an entry.
struct AssetLocation {
  std::string asset;
  std::string dir;
  std::string name;
  bool is_root() const { return dir.empty() && name.empty(); }
  // The path, relative to the asset root, of this location's own
  // directory: the `dir` of its children.
  std::string ChildDir() const {
    if (is_root()) return "";
    return dir.empty() ? name : dir + "/" + name;
  }
};

// Writes and reads one blob. The single path by which upload bytes reach
// storage: each WriteAt goes straight to the store, nothing is buffered.
class ByteSink {
 public:
  virtual ~ByteSink() = default;

  // Stores `data` at `offset`. Bytes it overlaps are replaced (last write
  // wins). Not synced. On error nothing of this write is stored.
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;

  // Fills `out` with bytes [offset, offset + n); bytes never written read as
  // zeros (Corruption for a blob opened with OpenCommittedBlob). Returns
  // bytes of one consistent state. Every chunk read is checked against the
  // checksum stored with it: corrupted chunks fail with Corruption (naming
  // the blob and the chunk's offset), never return wrong bytes.
  virtual Status ReadAt(uint64_t offset, size_t n, char* out) const = 0;

  // The written ranges, sorted, adjacent ranges merged.
  virtual Status Extents(std::vector<Extent>* out) const = 0;
};

// Atomic group of record changes. Backend-neutral: a list of typed
// operations that Store::Apply turns into one atomic write.
class Batch {
 public:
  // create: a new session, whose name no session or asset of the store
  // has (checked with the write: Exists otherwise, even when another mount
  // of a shared store takes the name at the same instant).
  struct PutSession {
    SessionRecord record;
    bool create = false;
  };
  struct DeleteSession {
    std::string name;
    uint64_t id;
  };
  struct PutNode {
    uint64_t session_id;
    NodeRecord record;
  };
  struct DeleteNode {
    uint64_t session_id;
    uint64_t node_id;
  };
  struct PutAsset {
    AssetRecord record;
  };
  struct PutAssetEntry {
    AssetEntry entry;
  };
  struct TruncateBlob {
    uint64_t blob;
    uint64_t length;
  };
  struct DeleteBlob {
    uint64_t blob;
  };
  // A shared store: this mount takes session `session_id` over from the
  // mount `from` ("": none recorded), if that is still its holder (Busy
  // otherwise). See Store::TakeOver.
  struct ClaimSession {
    uint64_t session_id;
    std::string from;
  };
  // A commit notice (the post_commit program's outbox): recorded with the
  // commit, removed once the program ran for it (Store::ListNotices).
  struct PutNotice {
    std::string asset;
  };
  struct DeleteNotice {
    std::string asset;
  };
  // Removing an asset: its record (checked to be still `record`: NotFound
  // otherwise, also when another mount removed it first), its root's id
  // record and its commit notice; each entry and its id record; files
  // whose readers are still open are kept as "removed" (PutRemoved) and
  // freed once they close (DeleteRemoved with a DeleteBlob).
  struct DeleteAsset {
    AssetRecord record;
  };
  struct DeleteAssetEntry {
    AssetEntry entry;
  };
  struct PutRemoved {
    uint64_t blob;
  };
  struct DeleteRemoved {
    uint64_t blob;
  };
  using Op = std::variant<PutSession, DeleteSession, PutNode, DeleteNode, PutAsset, PutAssetEntry,
                          TruncateBlob, DeleteBlob, ClaimSession, PutNotice, DeleteNotice,
                          DeleteAsset, DeleteAssetEntry, PutRemoved, DeleteRemoved>;

  void Put(SessionRecord r) { ops_.push_back(PutSession{std::move(r)}); }
  void Create(SessionRecord r) { ops_.push_back(PutSession{std::move(r), true}); }
  void Claim(uint64_t session_id, std::string from) {
    ops_.push_back(ClaimSession{session_id, std::move(from)});
  }
  void Delete(const SessionRecord& r) { ops_.push_back(DeleteSession{r.name, r.id}); }
  void Put(uint64_t session_id, NodeRecord r) { ops_.push_back(PutNode{session_id, std::move(r)}); }
  void DeleteNodeRecord(uint64_t session_id, uint64_t node_id) {
    ops_.push_back(DeleteNode{session_id, node_id});
  }
  void Put(AssetRecord r) { ops_.push_back(PutAsset{std::move(r)}); }
  void Put(AssetEntry e) { ops_.push_back(PutAssetEntry{std::move(e)}); }
  // Drops every byte at or after `length`.
  void Truncate(uint64_t blob, uint64_t length) { ops_.push_back(TruncateBlob{blob, length}); }
  // Frees all of a blob's bytes.
  void DeleteBlobData(uint64_t blob) { ops_.push_back(DeleteBlob{blob}); }
  void AddNotice(std::string asset) { ops_.push_back(PutNotice{std::move(asset)}); }
  void RemoveNotice(std::string asset) { ops_.push_back(DeleteNotice{std::move(asset)}); }
  void Delete(AssetRecord r) { ops_.push_back(DeleteAsset{std::move(r)}); }
  void Delete(AssetEntry e) { ops_.push_back(DeleteAssetEntry{std::move(e)}); }
  void KeepRemoved(uint64_t blob) { ops_.push_back(PutRemoved{blob}); }
  void ForgetRemoved(uint64_t blob) { ops_.push_back(DeleteRemoved{blob}); }

  const std::vector<Op>& ops() const { return ops_; }
  bool empty() const { return ops_.empty(); }

 private:
  std::vector<Op> ops_;
};

// What holds a store, for statfs: its size and the bytes upload data may
// still take (the smaller of a quota's and the medium's).
struct Space {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
};

// Per-user limits with several mounts (-o quota, -o max_sessions): what a
// mount may hold for one uid (its grant), or a limit (0: none).
struct QuotaGrant {
  uint64_t bytes = 0;
  uint64_t sessions = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // The space of what holds the store. NotSupported when the backend has
  // no figure to give (the caller reports the file system it knows of).
  virtual Result<Space> GetSpace() { return Status::NotSupported("this store reports no space"); }

  // Applies every operation of `batch` or none. With sync, durable on return.
  virtual Status Apply(const Batch& batch, bool sync) = 0;

  // The first of `count` consecutive fresh ids, never handed out before by
  // this store (the counter is persisted with the next Apply, so ids used
  // in records survive restarts; a shared store reserves blocks of ids
  // for each mount, which can fail).
  virtual Result<uint64_t> NewIds(uint64_t count) = 0;

  // ---- several mounts of one store (RADOS; docs/rados.md, "Several mounts") ----
  // This mount's id, or "" for a store that one process serves alone
  // (then it holds every session, and the calls below have nothing to do).
  virtual const std::string& MountId() const {
    static const std::string kNone;
    return kNone;
  }
  // Who mount `id` is (host, PID...), for messages.
  virtual std::string DescribeMount(const std::string& id) const { return id; }
  // The mount that holds session `session_id`: "" when none is recorded.
  virtual Status GetHolder(uint64_t /*session_id*/, std::string* holder) const {
    holder->clear();
    return Status::OK();
  }
  // Makes this mount the holder of session `session_id`, held so far by
  // `from` (as GetHolder said). Busy, naming the holder, while its lease
  // is live, or when another mount took the session first. Before the
  // claim: the old holder is fenced, its interrupted commits completed,
  // and, if it stopped uncleanly, chunks of the session whose bytes did
  // not survive dropped (as BeginUse). After it, the session's records
  // and bytes are the caller's to load.
  virtual Status TakeOver(uint64_t /*session_id*/, const std::string& /*from*/) {
    return Status::OK();
  }
  // Readers of committed files, so that a file removed on one mount keeps
  // its bytes for the readers of every live mount (docs/configuration.md,
  // "Removing assets"). AddReader records that this mount reads `blob`,
  // checked in the same write against the file's id record (which must
  // still say `where`): NotFound once the file is no longer committed
  // (its asset was removed meanwhile). DropReaders takes records back
  // (after this mount's last reader of each), in one write.
  virtual Status AddReader(uint64_t /*blob*/, const AssetLocation& /*where*/) {
    return Status::OK();
  }
  virtual Status DropReaders(const std::vector<uint64_t>& /*blobs*/) { return Status::OK(); }
  // Of `blobs`, those no live mount records a reader of (all of them on a
  // store one process serves).
  virtual Status Unread(const std::vector<uint64_t>& blobs, std::vector<uint64_t>* out) const {
    *out = blobs;
    return Status::OK();
  }
  // The commit notices (Batch::AddNotice) this mount is to deliver, sorted
  // by asset: on a store one process serves, every one; on a store
  // several mounts share, those of its own commits and those of mounts
  // whose leases are gone, which it takes over (one conditional write
  // each, so that one mount takes each). A live mount's notices stay its.
  virtual Status ClaimNotices(std::vector<std::string>* out) { return ListNotices(out); }
  // Of those, only the ones this call takes over from mounts whose leases
  // are gone (none on a store one process serves): what a running mount
  // adds to its queue. Its own notices are queued already, and one it has
  // just delivered may still be listed by a scan that began before its
  // removal: taken again, it would be delivered twice.
  virtual Status TakeOverNotices(std::vector<std::string>* out) {
    out->clear();
    return Status::OK();
  }
  // Sets this mount's grant for `uid` (docs/configuration.md, "Per-user
  // limits"): `want`, cut down to what `limit` leaves beside the grants of
  // the other live mounts, but never below `need` (QuotaExceeded, naming
  // what the other mounts hold, when `need` does not fit; a grant only
  // shrinks or grows within the limit, and a limit of 0 cuts nothing).
  // Sets *granted. A store one process serves grants `want` and stores
  // nothing.
  virtual Status SetQuotaGrant(uint32_t /*uid*/, QuotaGrant /*need*/, QuotaGrant want,
                               QuotaGrant /*limit*/, QuotaGrant* granted) {
    *granted = want;
    return Status::OK();
  }

  // An open session's record by name; NotFound when absent.
  virtual Status GetSession(std::string_view name, SessionRecord* out) const = 0;

  // Whether a ByteSink::WriteAt may return before its bytes and records
  // are stored (RADOS: both go out in the background). Then a client's
  // close and fsync of a file wait for it: FlushBlob.
  virtual bool AcknowledgesEarly() const { return false; }
  // The size of the reads the store serves best, so that readers of
  // committed files ask for that much at once (session::AssetReadCache):
  // a RADOS stripe object, whole.
  virtual size_t PreferredReadBytes() const { return size_t{1} << 20; }
  // Waits until every write of `blob` acknowledged so far is stored; an
  // IOError naming what was lost if some failed (their records are gone
  // then: the ranges read as never written).
  virtual Status FlushBlob(uint64_t /*blob*/) { return Status::OK(); }

  virtual std::unique_ptr<ByteSink> OpenBlob(uint64_t blob) = 0;
  // The same blob, read as a committed file: it has no holes, so a read of
  // bytes no write stored fails with Corruption instead of returning zeros.
  virtual std::unique_ptr<ByteSink> OpenCommittedBlob(uint64_t blob) = 0;

  // Open sessions and their nodes, for recovery at open.
  virtual Status ListSessions(std::vector<SessionRecord>* out) const = 0;
  virtual Status ListNodes(uint64_t session_id, std::vector<NodeRecord>* out) const = 0;

  // The committed index. Get* return NotFound when absent.
  virtual Status GetAsset(std::string_view name, AssetRecord* out) const = 0;
  virtual Status ListAssets(std::vector<AssetRecord>* out) const = 0;
  virtual Status GetAssetEntry(std::string_view asset, std::string_view dir, std::string_view name,
                               AssetEntry* out) const = 0;
  // Entries whose parent is `dir` in `asset`, sorted by name.
  virtual Status ListAssetDir(std::string_view asset, std::string_view dir,
                              std::vector<AssetEntry>* out) const = 0;
  virtual Status LocateId(uint64_t id, AssetLocation* out) const = 0;
  // The assets whose commit notice (Batch::AddNotice) is still recorded,
  // sorted by name.
  virtual Status ListNotices(std::vector<std::string>* out) const = 0;
  // Every entry of `asset` (files and directories, any depth), in key order.
  virtual Status ListAssetEntries(std::string_view asset, std::vector<AssetEntry>* out) const = 0;
  // Files of removed assets whose bytes waited for their readers
  // (Batch::KeepRemoved) and that no live process reads any more, so they
  // may be freed: on a store one process serves, every one (call it at
  // the start); on a store several mounts share (MountId not empty),
  // those no live mount records a reader of (AddReader), this one
  // included.
  virtual Status ListRemovedBlobs(std::vector<uint64_t>* out) const = 0;

  // Reclaims the space of blob bytes deleted or truncated since the last
  // compaction (the store keeps track of which). Returns the first failure.
  virtual Status Compact() = 0;
};

}  // namespace upfs::store
