// Engine: the upfs namespace (sessions/ and assets/) and the upload-session
// life cycle, without FUSE and without errno.
//
// Every object in the mount has a 64-bit id that is also its FUSE inode
// number: the fixed ids below, the ids of session nodes (allocated by the
// store), and on the committed side the same ids the nodes had in their
// session. Each session reserves three consecutive ids: its root directory
// (the session id), its `.finish` and its `.status`.
//
// Every method returns a Status or Result: on failure nothing changed,
// unless the method says otherwise.
//
// Times follow a local filesystem (ext4): a write or truncate sets the
// file's mtime and ctime; chmod, chown, utimensat, setxattr, removexattr
// and rename set the node's ctime; create, mkdir, unlink, rmdir and rename
// set the mtime and ctime of the directories whose entries change. atime
// changes only when set explicitly (as with `noatime`). A commit keeps the
// times the session's nodes had.
//
// Durability: Finish, Flush or Release of a `.finish` handle, and the
// rename of a session into assets/ return OK only once the commit is
// durable: when Finish or Flush returns OK, the commit and every byte the
// session received survive a machine crash (one synced store write). Other
// changes are written without a sync: a machine crash may lose the latest
// of them (store/store.h).
//
// Thread safety: all methods may be called concurrently from any number of
// threads. Locking (Engine::Impl in session/engine_impl.h, where clang's
// -Wthread-safety checks each member against its lock): `table_mu` (the
// session table) is taken before a session's `mu`; a file's `mu` nests
// inside its session's. The leaves, under which nothing else is locked:
// `index_mu` (id -> session), `handles_mu` (open handles, committed files'
// readers) and `catch_up_mu` (the background hasher's queue).
// `asset_removal_mu` (shared by opens and releases of committed files,
// exclusive while an asset is removed) is taken before `reader_records_mu`
// (several mounts: this mount's reader records of committed files, held
// across their store writes), and both before `handles_mu`. A
// handle's `mu` (its manifest or .status text) comes first of all: a
// `.finish` handle holds it across its commit, so a second close waits for
// the first one's result. No other lock is held across a synced store
// write; hashing of received bytes runs under the file's lock only (other
// files and sessions proceed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "session/clock.h"
#include "session/ignore_rules.h"
#include "store/store.h"

namespace upfs::session {

inline constexpr uint64_t kRootId = 1;
inline constexpr uint64_t kSessionsId = 2;
inline constexpr uint64_t kAssetsId = 3;

inline constexpr std::string_view kFinishName = ".finish";
inline constexpr std::string_view kStatusName = ".status";

// xattr on a session directory: "1" makes the session write-once, "0"
// makes it last-write-wins. Also readable.
inline constexpr std::string_view kWriteOnceXattr = "user.upfs.write_once";
// xattr on every committed file: its SHA-256 in lowercase hex.
inline constexpr std::string_view kSha256Xattr = "user.sha256";
// xattr on a committed asset's root when its commit left files out
// (Options::ignore_patterns): their paths, one per line. Set by the commit
// only: a session's own is refused (NotPermitted).
inline constexpr std::string_view kLeftOutXattr = "user.upfs.left_out";

// Largest name of one path component, as on Linux filesystems.
inline constexpr size_t kMaxNameLength = 255;
// Largest manifest accepted by `.finish`, held in memory until close.
inline constexpr uint64_t kMaxManifestBytes = uint64_t{256} << 20;

enum class NodeKind {
  kRoot,         // the mount root
  kSessionsDir,  // sessions/
  kAssetsDir,    // assets/
  kSessionRoot,  // sessions/NAME
  kDir,          // a directory inside a session
  kFile,         // a file inside a session
  kFinish,       // sessions/NAME/.finish
  kStatus,       // sessions/NAME/.status
  kAssetRoot,    // assets/NAME
  kAssetDir,     // a directory inside an asset
  kAssetFile,    // a file inside an asset
};

bool IsDirectoryKind(NodeKind kind);
// True for everything under assets/ (and assets/ itself): immutable.
bool IsCommittedKind(NodeKind kind);

struct Attr {
  uint64_t id = 0;
  NodeKind kind = NodeKind::kRoot;
  uint32_t mode = 0;  // S_IFDIR / S_IFREG | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;  // directories: 2 + subdirectories, as ext4
  uint64_t size = 0;
  int64_t atime_ns = 0;  // as last set (utimensat); reads do not move it
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

struct DirEntry {
  std::string name;
  uint64_t id = 0;
  uint32_t mode = 0;  // S_IFDIR or S_IFREG | bits
};

struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Who writes or truncates, for the rule of a local filesystem (the
// kernel's should_remove_suid): a write, or an open with O_TRUNC, by a
// caller without CAP_FSETID clears a regular file's S_ISUID, and its
// S_ISGID when group-execute is set or the caller is not in the file's
// group. Asked only when a file with one of those bits is met, so an
// implementation may look the answers up lazily.
class Credentials {
 public:
  virtual ~Credentials() = default;
  virtual bool HasCapFsetid() = 0;
  virtual bool InGroup(uint32_t gid) = 0;
};

// How a handle is opened (from open(2)'s flags).
struct OpenMode {
  bool read = true;
  bool write = false;
  bool truncate = false;  // O_TRUNC
};

// What Engine::OpenHandle opened: the handle (an opaque number for the fs
// layer) and the kind of file it is on (kFile, kFinish, kStatus or
// kAssetFile), which decides how the fs layer caches it.
struct OpenedHandle {
  uint64_t handle = 0;
  NodeKind kind = NodeKind::kFile;
};

// Fields of SetAttr to change; unset ones stay.
struct AttrChange {
  std::optional<uint32_t> mode;  // permission bits
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
};

struct Options {
  // Sessions idle longer than this with no open file expire (ExpireIdle).
  int64_t ttl_ns = int64_t{24} * 3600 * 1000000000;
  // New sessions are write-once unless their directory's xattr says not.
  bool write_once_default = false;
  // Clock for creation, mtimes and expiry. Null: the system clock.
  std::shared_ptr<Clock> clock;
  // Commit hooks (session/hooks.h): absolute paths of programs; "" for none.
  // pre_commit runs in every finish after verification and may refuse it
  // (NotPermitted); post_commit is told of every commit, at least once.
  std::string pre_commit;
  std::string post_commit;
  // A hook running longer is killed (pre_commit: the commit is refused).
  int64_t hook_timeout_ns = int64_t{60} * 1'000'000'000;
  // A failed post_commit is retried after this, doubling up to 5 minutes.
  int64_t post_commit_retry_ns = int64_t{1'000'000'000};
  // Assets can never be removed (rmdir assets/NAME and rm -r's steps fail
  // with ReadOnly).
  bool worm = false;
  // Per-user limits (session/quota.h): bytes a uid's open sessions may
  // hold, and how many it may have open; 0: no limit.
  uint64_t quota_bytes = 0;
  uint64_t max_sessions = 0;
  // Files tools leave behind (session/ignore_rules.h): a commit leaves out
  // a file matching one of these unless the manifest lists it, frees its
  // bytes and lists it in the asset's kLeftOutXattr. Empty: none.
  std::vector<std::string> ignore_patterns = IgnoreRules::Defaults();
  // The mount point, for the hooks' UPFS_SESSION_DIR and UPFS_ASSET_DIR
  // ("" leaves them out).
  std::string mountpoint;
};

// What changed on the committed side, for kernel cache invalidation.
struct CommitInfo {
  std::string name;
  uint64_t session_id = 0;
};

class Engine {
 public:
  // Opens the engine over `store`, recovering every open session (nodes,
  // extents, lengths) from it.
  static Result<std::unique_ptr<Engine>> Open(std::unique_ptr<store::Store> store, Options options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- namespace ----
  Result<Attr> Lookup(uint64_t parent, std::string_view name);
  Result<Attr> GetAttr(uint64_t id);
  // All entries of a directory except "." and "..", sorted by name.
  Result<std::vector<DirEntry>> ReadDir(uint64_t dir);

  // Under sessions/: begins a session. Inside a session: a subdirectory.
  Result<Attr> Mkdir(uint64_t parent, std::string_view name, uint32_t mode, Caller caller);
  // Creates an empty file in a session (Exists if the name is taken).
  Result<Attr> Create(uint64_t parent, std::string_view name, uint32_t mode, Caller caller);
  Status Unlink(uint64_t parent, std::string_view name);
  // rmdir of an (empty) session directory aborts the session and frees its
  // data. rmdir of assets/NAME removes the whole asset, in one atomic,
  // synced write: gone from every listing and lookup at once; files open
  // then stay readable until closed, and their bytes are freed then (the
  // rest at once). ReadOnly under Options::worm. (The kernel checks the
  // caller: assets/ is sticky, so the asset's owner or root.)
  Status Rmdir(uint64_t parent, std::string_view name);
  // A step of removing a whole asset the way rm -r, find -delete and
  // shutil.rmtree do: the unlink (`is_dir` false) or rmdir of `name` inside
  // an asset's directory `parent`. It changes nothing: the asset stays
  // whole until its own directory goes (Rmdir(kAssetsId, NAME)), which
  // removes all of it at once, so a walk that stops halfway removes
  // nothing. OK if the entry is there with that type, `caller` is the
  // asset's owner or root (NotPermitted otherwise) and assets can be
  // removed (ReadOnly under Options::worm). The fs layer asks only when
  // the caller is walking the tree: it has `parent` open.
  Status CheckAssetRemovalStep(uint64_t parent, std::string_view name, bool is_dir, Caller caller);
  // Within one session, as on a local filesystem (replaces a file target).
  // sessions/NAME -> assets/NAME commits the session like an empty
  // manifest; `committed` is then filled in.
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, bool no_replace, CommitInfo* committed);
  // `caller` (may be null: nothing cleared) is asked about clearing
  // setuid/setgid when the change truncates such a file.
  Result<Attr> SetAttr(uint64_t id, const AttrChange& change, Credentials* caller = nullptr);

  Status SetXattr(uint64_t id, std::string_view name, std::string_view value);
  Result<std::string> GetXattr(uint64_t id, std::string_view name);
  Result<std::vector<std::string>> ListXattr(uint64_t id);
  Status RemoveXattr(uint64_t id, std::string_view name);

  // ---- data ----
  // OpenHandle/Release bracket every open file handle of a session file or
  // control file; a session with an open handle never expires. Opening
  // .status snapshots its text into the returned handle (an opaque number
  // for the fs layer); it is not activity and does not hold the session. `.finish` opens only for
  // writing, `.status` only for reading, committed files only for reading (ReadOnly otherwise).
  // Directories are not opened through this.
  // `opener` (may be null: nothing cleared) is asked about clearing
  // setuid/setgid when `mode.truncate` meets a file with those bits.
  Result<OpenedHandle> OpenHandle(uint64_t id, OpenMode mode, Credentials* opener = nullptr);
  // For .finish: runs the commit if this handle wrote a manifest and it has
  // not run yet (flush already ran it otherwise). Never fails for others.
  Status Release(uint64_t id, uint64_t handle);
  // For .finish: runs the commit with the manifest written through this
  // handle (once per handle; later flushes return the first result). For
  // a session file, as Fsync.
  Status Flush(uint64_t id, uint64_t handle, CommitInfo* committed);
  // For a session file on a store that acknowledges writes before they
  // are stored (store::Store::AcknowledgesEarly: RADOS): waits until every
  // write of the file acknowledged so far is stored. If some were lost,
  // fails with what the store says, and the file's received ranges are
  // read back from the store (.status then lists the lost ones missing).
  // OK at once on other stores and for other handles, read-only ones of a
  // session file included: a loss is reported once, to a handle that
  // could write (unlike Linux, where every open fd sees a writeback error),
  // and it stays in .status and fails the next finish either way.
  Status Fsync(uint64_t id, uint64_t handle);
  // Whether close(2) of a file written in a session must reach Flush:
  // the store acknowledges writes before they are stored.
  bool CloseWaitsForWrites() const;

  // Write through to the store; returns bytes written (all of `data`).
  // `writer` (may be null: nothing cleared, as for a write-back of mmap'd
  // pages, which a local filesystem does not clear either) is asked about
  // clearing setuid/setgid when the file has those bits.
  // With `after_reply`, the bytes are stored when Write returns but the
  // file's SHA-256 is fed with them after: a successful write to a session
  // file sets *after_reply to that work, which the caller runs once it has
  // answered the client (while `data` is still valid), so that the client
  // sends its next write while this one's bytes are hashed. Until it ran,
  // the write is in flight: a finish waits for it.
  Result<size_t> Write(uint64_t id, uint64_t handle, uint64_t offset, std::string_view data,
                       Credentials* writer = nullptr, std::function<void()>* after_reply = nullptr);
  // Up to `size` bytes at `offset`; fewer only at end of file.
  Result<std::string> Read(uint64_t id, uint64_t handle, uint64_t offset, size_t size);
  // The same bytes, handed to `reply` (called once, on success only) as
  // pieces in file order that stay valid only during the call: those of a
  // committed file are the read cache's own windows, so the reply is made
  // from them without a copy into a buffer of its own.
  using ReadReply = std::function<void(const std::vector<std::string_view>& pieces)>;
  Status ReadPieces(uint64_t id, uint64_t handle, uint64_t offset, size_t size,
                    const ReadReply& reply);

  // ---- session life ----
  // Verifies and commits session `name` against `manifest` (sha256sum
  // format, empty = commit with computed hashes). All-or-nothing.
  Status Finish(std::string_view name, std::string_view manifest, CommitInfo* committed);
  // Expires sessions idle longer than the TTL with no open handle. Returns
  // the names expired.
  std::vector<std::string> ExpireIdle();
  // The text of .status for session `name`.
  Result<std::string> StatusReport(std::string_view name);

  // Starts running the post_commit program (Options::post_commit) for
  // commits, first for those a crash or stop left undelivered. Called once
  // the mount is up, so the program can read the assets through it;
  // commits before that wait. OK at once without a post_commit program.
  Status StartPostCommit();

  // Statistics for statfs.
  struct Usage {
    uint64_t sessions = 0;
    uint64_t assets = 0;
  };
  Usage GetUsage();
  // The store's space (store::Store::GetSpace), for statfs; NotSupported
  // when the store has none to give.
  Result<store::Space> GetSpace();

  // What this engine did since it opened, for metrics (-o metrics_file).
  // Counters only grow; a restart starts them from 0 (the gauges are read
  // from the engine's state).
  struct Stats {
    uint64_t open_sessions = 0;  // as GetUsage
    uint64_t assets = 0;
    uint64_t commits = 0;
    // Finishes that failed, by the Status code they failed with
    // (kHashMismatch, kMissingData, kNotPermitted for a pre_commit
    // refusal, ...), indexed by the code's number.
    std::vector<uint64_t> failed_finishes;
    // Bytes that writes added to session files (each byte once: rewriting
    // a range adds nothing), and the bytes of the files commits made assets.
    uint64_t bytes_received = 0;
    uint64_t bytes_committed = 0;
    // The duration of every finish, committed or failed:
    // finish_buckets[i] counts those that took at most kFinishBuckets[i]
    // seconds and more than the bound before (not cumulative); the last
    // entry counts those beyond every bound.
    std::vector<uint64_t> finish_buckets;
    double finish_seconds_sum = 0;
    uint64_t quota_refusals = 0;  // writes and mkdirs refused with QuotaExceeded
    uint64_t pre_commit_runs = 0;
    uint64_t pre_commit_refusals = 0;  // exits other than 0, timeouts, spawn failures
    uint64_t post_commit_runs = 0;     // delivered + failed
    uint64_t post_commit_failures = 0;
  };
  // Upper bounds (seconds) of the finish duration histogram's buckets.
  static constexpr double kFinishBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,      2.5,   5,    10,    30,   60};
  // Cheap: counters read without locks, the session count under the
  // table's lock.
  Stats GetStats();

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace upfs::session
