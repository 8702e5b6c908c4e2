#include "fs/upfs_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <new>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "fs/errno_table.h"
#include "fs/request_counters.h"

namespace upfs::fs {
namespace {

using session::Attr;
using session::NodeKind;
using session::OpenedHandle;

// What a request is about, for its log lines. Pointers are the request's
// own strings, alive for the whole handler.
struct OpInfo {
  FuseOp op = FuseOp::kLookup;
  uint64_t id = 0;
  const char* name = nullptr;   // a name within directory `id`, or an xattr name
  int64_t offset = -1;          // -1: none
  uint64_t length = 0;          // bytes at `offset`
  uint64_t id2 = 0;             // rename: the new parent
  const char* name2 = nullptr;  // rename: the new name
  // The failure repeats one already logged (a .finish commit's result,
  // answered again to a later close or release): log it at debug only.
  bool repeat = false;
};

}  // namespace
}  // namespace upfs::fs

// Formats an OpInfo inside spdlog's own try block, so a log line never
// allocates (or throws) before the logger has decided to log it.
template <>
struct fmt::formatter<upfs::fs::OpInfo> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename Context>
  auto format(const upfs::fs::OpInfo& op, Context& ctx) const {
    auto out = fmt::format_to(ctx.out(), "{} id={}", upfs::fs::FuseOpName(op.op), op.id);
    if (op.name != nullptr) out = fmt::format_to(out, " name='{}'", op.name);
    if (op.offset >= 0) out = fmt::format_to(out, " off={} len={}", op.offset, op.length);
    if (op.name2 != nullptr) out = fmt::format_to(out, " to={}/'{}'", op.id2, op.name2);
    return out;
  }
};

namespace upfs::fs {
namespace {

// ---- cache policy (see upfs_fs.h) ----

// The committed side never changes once visible.
constexpr double kImmutableTimeout = 3600.0;
// root, sessions/ and assets/: their names are fixed, but their attributes
// (nlink, mtime) change with every session begun or committed. The kernel
// drops them itself for operations it sends; commits through .finish and
// expiries are invalidated explicitly; this bounds anything missed.
constexpr double kFixedDirAttrTimeout = 1.0;
// A miss on the session side (see upfs_fs.h for why caching it is safe).
constexpr double kSessionMissTimeout = 1.0;
// Names and attributes on the session side (see TimesFor).
constexpr double kSessionTimeout = 1.0;

// Largest write the kernel may send in one request. libfuse derives the
// kernel's max_pages from it; FUSE_CAP_BIG_WRITES no longer exists in
// libfuse 3 (writes larger than a page are always allowed).
constexpr unsigned kMaxWrite = 1u << 20;
// st_blksize of files: cp, stdio and rsync size their buffers from it, and
// one 1 MiB write is one FUSE request and one store write.
constexpr blksize_t kFileBlockSize = 1 << 20;
constexpr blksize_t kDirBlockSize = 4096;

// Whether an open of a session file is upload-only: opened write-only, so
// it cannot read or mmap the file. Such a handle bypasses the page cache
// (direct_io): the kernel then neither copies every written byte into
// cached pages the uploader never reads nor keeps them, and the commit
// does not wait while the kernel drops them (with cached pages, the
// invalidation at commit spent ~250 ms per 256 MiB evicting them). Writes
// still arrive as max_write requests, since cp and rsync size their
// buffers from st_blksize. Handles that may read keep the page cache, and
// the kernel keeps both coherent (a direct write drops the cached range).
bool UploadOnly(int open_flags) { return (open_flags & O_ACCMODE) == O_WRONLY; }

// Whether close(2) of a handle may skip the FLUSH request (noflush): one
// round trip less per file a cp or rsync uploads. A FLUSH does nothing
// for a file but .finish (whose commit it is): every write was stored and
// answered before write(2) returned, upfs keeps no POSIX locks (the kernel
// does), and there is no writeback cache. What a flush would still do is
// write back pages dirtied through a shared mapping, before close returns;
// an upload-only handle cannot map the file (mmap needs read access), and
// committed files are read-only, so those two skip it; a handle that may
// read keeps it.
// A store that acknowledges writes before they are stored (RADOS) needs
// the FLUSH of a handle that may write: close then waits for them
// (Engine::Fsync), as NFS commits on close, so a client whose close
// returned 0 has its bytes stored. A read-only handle has neither writes
// to wait for nor a mapping it could dirty, so it skips the FLUSH too.
bool SkipsFlush(NodeKind kind, int open_flags, bool close_waits) {
  if (kind == NodeKind::kAssetFile) return true;
  if (kind != NodeKind::kFile) return false;
  if ((open_flags & O_ACCMODE) == O_RDONLY) return true;
  return UploadOnly(open_flags) && !close_waits;
}

struct CacheTimes {
  double entry;
  double attr;
};

CacheTimes TimesFor(NodeKind kind) {
  switch (kind) {
    case NodeKind::kAssetRoot:
    case NodeKind::kAssetDir:
    case NodeKind::kAssetFile:
      return {kImmutableTimeout, kImmutableTimeout};
    case NodeKind::kRoot:
    case NodeKind::kSessionsDir:
    case NodeKind::kAssetsDir:
      return {kImmutableTimeout, kFixedDirAttrTimeout};
    case NodeKind::kSessionRoot:
    case NodeKind::kDir:
    case NodeKind::kFile:
      // Every change to a session's names and attributes comes through
      // this kernel (which updates or drops what it cached for the
      // requests it sends), except those upfs makes itself: a commit or
      // expiry (the session's entry under sessions/ is invalidated, so no
      // path reaches its nodes), and setuid/setgid cleared by a write or
      // an O_TRUNC open (their attributes are invalidated before the
      // reply). Caching them cut a copied small file from 13 requests to 6
      // (7 GETATTR to 1: permission checks under default_permissions).
      return {kSessionTimeout, kSessionTimeout};
    case NodeKind::kFinish:
    case NodeKind::kStatus:
      // .status is a new report every time it is read.
      return {0.0, 0.0};
  }
  return {0.0, 0.0};
}

timespec ToTimespec(int64_t ns) {
  constexpr int64_t kNsPerSec = 1'000'000'000;
  int64_t sec = ns / kNsPerSec;
  int64_t rem = ns % kNsPerSec;
  if (rem < 0) {  // floor, so times before 1970 stay ordered
    rem += kNsPerSec;
    --sec;
  }
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(rem);
  return ts;
}

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct stat ToStat(const Attr& attr) {
  struct stat st {};
  st.st_ino = attr.id;
  st.st_mode = attr.mode;
  st.st_nlink = attr.nlink;
  st.st_uid = attr.uid;
  st.st_gid = attr.gid;
  st.st_size = static_cast<off_t>(attr.size);
  st.st_blksize = session::IsDirectoryKind(attr.kind) ? kDirBlockSize : kFileBlockSize;
  // du and sparse-file heuristics read st_blocks; report the length, as
  // gaps are not known here.
  st.st_blocks = static_cast<blkcnt_t>((attr.size + 511) / 512);
  st.st_atim = ToTimespec(attr.atime_ns);  // as last set: reads do not move it (noatime)
  st.st_mtim = ToTimespec(attr.mtime_ns);
  st.st_ctim = ToTimespec(attr.ctime_ns);
  return st;
}

fuse_entry_param ToEntry(const Attr& attr) {
  fuse_entry_param e{};
  e.ino = attr.id;
  e.generation = 0;  // ids are never reused
  e.attr = ToStat(attr);
  const CacheTimes times = TimesFor(attr.kind);
  e.entry_timeout = times.entry;
  e.attr_timeout = times.attr;
  return e;
}

// O_TRUNC arrives here because Init enables FUSE_CAP_ATOMIC_O_TRUNC.
session::OpenMode OpenModeOf(int flags) {
  session::OpenMode mode;
  const int access = flags & O_ACCMODE;
  mode.read = access == O_RDONLY || access == O_RDWR;
  mode.write = access == O_WRONLY || access == O_RDWR;
  mode.truncate = (flags & O_TRUNC) != 0;
  return mode;
}

session::Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return session::Caller{static_cast<uint32_t>(ctx->uid), static_cast<uint32_t>(ctx->gid)};
}

// The credentials of a request's thread, for the engine's setuid/setgid
// rule. libfuse 3.14 does not pass on the kernel's FUSE_WRITE_KILL_SUIDGID,
// and for direct_io writes and atomic O_TRUNC opens the kernel sends no
// setattr clearing the bits, so upfs decides as the kernel would: from
// CAP_FSETID and the groups in /proc/TID/status, read only when the engine
// meets a file with such a bit. If the thread is gone (or /proc hides it),
// uid 0 counts as holding CAP_FSETID and the request's gid as its only
// group.
class RequestCredentials final : public session::Credentials {
 public:
  RequestCredentials(const ProcFs& proc, fuse_req_t req) : proc_(proc), ctx_(*fuse_req_ctx(req)) {}

  bool HasCapFsetid() override {
    constexpr uint64_t kCapFsetid = uint64_t{1} << 4;
    return (Load().effective_caps & kCapFsetid) != 0;
  }
  bool InGroup(uint32_t gid) override {
    const ThreadCredentials& c = Load();
    return gid == c.fsgid || std::find(c.groups.begin(), c.groups.end(), gid) != c.groups.end();
  }
  // Whether the engine asked: it met a file with setuid or setgid, and may
  // have cleared them behind the kernel's cached attributes.
  bool Asked() const { return creds_.has_value(); }

 private:
  const ThreadCredentials& Load() {
    if (!creds_) {
      creds_ = proc_.CredentialsOf(ctx_.pid);
      if (!creds_) {
        creds_.emplace();
        creds_->effective_caps = ctx_.uid == 0 ? ~uint64_t{0} : 0;
        creds_->fsgid = static_cast<uint32_t>(ctx_.gid);
      }
    }
    return *creds_;
  }

  const ProcFs& proc_;
  const fuse_ctx ctx_;
  std::optional<ThreadCredentials> creds_;
};

// ---- the failure funnel ----

UpfsFs* Self(fuse_req_t req) { return static_cast<UpfsFs*>(fuse_req_userdata(req)); }

// The one place a failed request is logged, counted and answered, with the
// errno and log level of errno_table.h.
void ReplyFailure(fuse_req_t req, const OpInfo& op, Status::Code code,
                  std::string_view why) noexcept {
  const CodeRow& row = RowFor(code);
  const int err = row.errnum;
  Self(req)->requests().CountError(op.op, err);
  const char* err_name = strerrorname_np(err);
  spdlog::log(op.repeat ? spdlog::level::debug : row.level, "{} failed: {} ({}): {}", op,
              err_name ? err_name : "?", Status::CodeName(code), why);
  // A failed send means the request was interrupted; nothing to undo.
  fuse_reply_err(req, err);
}

// Runs one handler body. The body either replies (as its very last action:
// nothing after a reply may throw) and returns OK, or returns a failure
// without replying, which is then logged and answered here. An exception
// can therefore only come from before the reply, and is answered here:
// ENOMEM for std::bad_alloc, EIO (and an error log: it is a bug) for
// anything else.
template <typename Body>
void Serve(fuse_req_t req, const OpInfo& op, Body&& body) noexcept {
  Self(req)->requests().Count(op.op);
  try {
    spdlog::debug("{}", op);
    Status status = body();
    if (!status.ok()) ReplyFailure(req, op, status.code(), status.message());
  } catch (const std::bad_alloc&) {
    ReplyFailure(req, op, Status::Code::kOutOfMemory, "out of memory");
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected exception: {}", op, e.what());
    ReplyFailure(req, op, Status::Code::kIOError, e.what());
  } catch (...) {
    spdlog::error("{}: unexpected exception of unknown type", op);
    ReplyFailure(req, op, Status::Code::kIOError, "unexpected exception");
  }
}

bool IsDotOrDotDot(std::string_view name) { return name == "." || name == ".."; }

}  // namespace

// An open directory: its listing, taken when reading starts at offset 0
// (opendir, rewinddir) so the offsets handed to the kernel (index + 1)
// stay valid however the directory changes while it is read.
struct UpfsFs::DirHandle {
  using Listing = std::vector<session::DirEntry>;

  DirHandle(uint64_t id_in, uint64_t dotdot_in, bool full_entries_in)
      : id(id_in), dotdot(dotdot_in), full_entries(full_entries_in) {}

  const uint64_t id;
  // The inode reported for "..": readdir's d_ino is informational, and the
  // parent of a directory inside a session or asset is not known here.
  const uint64_t dotdot;
  // readdirplus hands the kernel complete entries (each one a lookup
  // reference) only where they can be cached: the committed side and the
  // root. On the session side, timeouts are 0, so an entry would be
  // useless and cost a GetAttr per name; names go out without attributes.
  const bool full_entries;

  Mutex mu;
  std::shared_ptr<const Listing> listing;  // guarded by mu
};

UpfsFs::UpfsFs(session::Engine* engine, FsOptions options)
    : engine_(*engine), options_(std::move(options)), proc_(options_.proc_root) {}

UpfsFs::~UpfsFs() { Stop(); }

void UpfsFs::Start(fuse_session* se) {
  if (!options_.mountpoint.empty() && !proc_.SetMountPoint(options_.mountpoint)) {
    spdlog::warn(
        "{} not found in {}/self/mountinfo: an empty manifest written to .finish "
        "commits at release, after close(2) returned",
        options_.mountpoint, options_.proc_root);
  }
  invalidator_ = std::make_unique<CacheInvalidator>([se](const Invalidation& inv) {
    if (inv.kind == Invalidation::Kind::kEntry) {
      return fuse_lowlevel_notify_inval_entry(se, inv.ino, inv.name.c_str(), inv.name.size());
    }
    // A negative offset: the attributes only. Offset 0, length 0:
    // attributes and all cached data (for a directory, its cached listing).
    if (inv.kind == Invalidation::Kind::kAttrs)
      return fuse_lowlevel_notify_inval_inode(se, inv.ino, -1, 0);
    return fuse_lowlevel_notify_inval_inode(se, inv.ino, 0, 0);
  });
}

void UpfsFs::Stop() {
  if (invalidator_) invalidator_->Stop();
  invalidator_.reset();
}

void UpfsFs::SweepExpiredSessions() {
  std::vector<std::string> expired = engine_.ExpireIdle();
  if (expired.empty()) return;
  std::vector<Invalidation> batch;
  // The engine logs each expiry (lifecycle, at info); here only the
  // kernel's view is brought up to date.
  for (const std::string& name : expired) {
    batch.push_back(Invalidation::Entry(session::kSessionsId, name));
  }
  batch.push_back(Invalidation::Inode(session::kSessionsId));
  // Not a request handler: nothing is waiting on this, so don't wait.
  if (invalidator_) invalidator_->Submit(std::move(batch), std::chrono::milliseconds(0));
}

// ---- helpers ----

void UpfsFs::ReplyEntry(fuse_req_t req, const Attr& attr) {
  const fuse_entry_param e = ToEntry(attr);
  // Count before replying: the kernel may forget it as soon as it has it.
  inodes_.Add(attr.id);
  if (fuse_reply_entry(req, &e) == -ENOENT) {
    // Interrupted: the kernel never took the reference.
    inodes_.Forget(attr.id, 1);
  }
}

void UpfsFs::ReleaseUnclaimed(uint64_t id, uint64_t handle) noexcept {
  try {
    Status s = engine_.Release(id, handle);
    if (!s.ok()) {
      spdlog::warn("release of unclaimed handle {} of id {}: {}", handle, id, s.ToString());
    }
  } catch (...) {
    spdlog::error("release of unclaimed handle {} of id {}: unexpected exception", handle, id);
  }
}

void UpfsFs::InvalidateAttrs(uint64_t ino) noexcept {
  if (!invalidator_) return;
  try {
    // Waited for (with the same bound as a commit's), so that the caller's
    // next stat sees the change. Safe although the kernel holds this
    // inode's lock for the request being served: dropping attributes only
    // (a negative offset) takes no inode lock, unlike dropping pages.
    if (!invalidator_->Submit({Invalidation::Attrs(ino)}, options_.invalidation_wait)) {
      spdlog::warn("the kernel did not take the attribute invalidation of id {} within {} ms", ino,
                   options_.invalidation_wait.count());
    }
  } catch (const std::exception& e) {
    spdlog::warn("queueing the attribute invalidation of id {} failed: {}", ino, e.what());
  }
}

void UpfsFs::InvalidateCommitted(const session::CommitInfo& committed, bool wait) {
  if (!invalidator_) return;
  try {
    std::vector<Invalidation> batch{
        // The session directory is gone, and must not be found by a
        // cached dentry (its inode now lives at assets/NAME).
        Invalidation::Entry(session::kSessionsId, committed.name),
        // The session's .finish, still open during this flush: its dentry
        // would keep the unhashed directory dentry above alive, as a
        // second alias of the directory's inode, after the close. A
        // lookup of assets/NAME must then move that alias, which the
        // kernel only tries (it fails with ESTALE while another operation
        // holds sessions/, such as the sweeper's invalidation of an
        // expired session: 10 lookups in 6000 commits, tests/integration/
        // visibility.sh). Dropped now, it is freed with the file.
        // (.status too, should something hold it open.)
        Invalidation::Entry(committed.session_id, std::string(session::kFinishName)),
        Invalidation::Entry(committed.session_id, std::string(session::kStatusName)),
        // A negative dentry for the new asset, if the kernel has one.
        Invalidation::Entry(session::kAssetsId, committed.name),
        Invalidation::Inode(session::kSessionsId),
        Invalidation::Inode(session::kAssetsId),
    };
    const auto timeout = wait ? options_.invalidation_wait : std::chrono::milliseconds(0);
    if (!invalidator_->Submit(std::move(batch), timeout) && wait) {
      spdlog::warn(
          "session '{}' committed, but the kernel did not take the cache invalidations within "
          "{} ms; replying anyway (they are still sent)",
          committed.name, timeout.count());
    }
  } catch (const std::exception& e) {
    // The commit is done and durable; the caches expire on their own.
    spdlog::warn("session '{}' committed, but queueing cache invalidations failed: {}",
                 committed.name, e.what());
  }
}

uint64_t UpfsFs::AddDirHandle(std::shared_ptr<DirHandle> handle) {
  MutexLock lock(dirs_mu_);
  const uint64_t fh = next_dir_handle_++;
  dirs_.emplace(fh, std::move(handle));
  return fh;
}

std::shared_ptr<UpfsFs::DirHandle> UpfsFs::FindDirHandle(uint64_t fh) {
  MutexLock lock(dirs_mu_);
  auto it = dirs_.find(fh);
  return it == dirs_.end() ? nullptr : it->second;
}

void UpfsFs::RemoveDirHandle(uint64_t fh) noexcept {
  std::shared_ptr<DirHandle> doomed;  // destroyed outside the lock
  MutexLock lock(dirs_mu_);
  auto it = dirs_.find(fh);
  if (it == dirs_.end()) return;
  doomed = std::move(it->second);
  dirs_.erase(it);
}

// ---- handlers ----

void UpfsFs::Init(fuse_conn_info* conn) {
  try {
    const auto enable = [conn](unsigned cap) {
      if (conn->capable & cap) conn->want |= cap;
    };
    const auto disable = [conn](unsigned cap) { conn->want &= ~cap; };

    // The engine serves reads statelessly and concurrently.
    enable(FUSE_CAP_ASYNC_READ);
    // Lookups and readdirs in one directory may run in parallel: the
    // engine is thread-safe, and sessions/ is shared by every client.
    enable(FUSE_CAP_PARALLEL_DIROPS);
    // O_TRUNC arrives with open (Engine::OpenHandle's truncate) instead of as a
    // separate setattr that could interleave with other writers.
    enable(FUSE_CAP_ATOMIC_O_TRUNC);
    // The kernel drops a session file's cached pages when its size or
    // mtime changes behind its back.
    enable(FUSE_CAP_AUTO_INVAL_DATA);
    enable(FUSE_CAP_READDIRPLUS);
    enable(FUSE_CAP_READDIRPLUS_AUTO);

    // Writes must reach the engine when write(2) runs: it is where a
    // write-once conflict or a full store is reported, and the data is
    // written through, never buffered.
    disable(FUSE_CAP_WRITEBACK_CACHE);
    // Splice would only move the copy: the engine takes and returns bytes
    // in memory, so write_buf and fuse_reply_data gain nothing here.
    // (Clients that splice into a file, like gio copy, are unaffected.)
    disable(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    // Let the kernel clear setuid/setgid bits with a setattr where it does
    // (chown, truncate(2), buffered writes); for direct_io writes and
    // atomic O_TRUNC opens it sends none, and RequestCredentials decides.
    disable(FUSE_CAP_HANDLE_KILLPRIV);
    // Neither ACLs nor NFS export (which needs lookups of "." and "..").
    disable(FUSE_CAP_POSIX_ACL | FUSE_CAP_EXPORT_SUPPORT);

    conn->max_write = kMaxWrite;
    // conn->max_readahead stays what the kernel offered: a filesystem can
    // only lower it (raise it with /sys/class/bdi/<dev>/read_ahead_kb).
    conn->time_gran = 1;  // mtimes are nanoseconds

    spdlog::info(
        "kernel FUSE protocol {}.{}: max_write {} KiB, max_readahead {} KiB, "
        "capable {:#x}, enabled {:#x}",
        conn->proto_major, conn->proto_minor, conn->max_write >> 10, conn->max_readahead >> 10,
        conn->capable, conn->want);
  } catch (...) {
    // Nothing above is expected to throw (spdlog catches its own errors);
    // this keeps the rule that no exception leaves a callback.
    spdlog::error("init: unexpected exception");
  }
}

void UpfsFs::Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Serve(req, {FuseOp::kLookup, parent, name}, [&]() -> Status {
    Result<Attr> found = engine_.Lookup(parent, name);
    if (found.ok()) {
      ReplyEntry(req, *found);
      return Status::OK();
    }
    if (!found.status().IsNotFound()) return found.status();
    // A miss: cache it briefly on the session side only (see upfs_fs.h).
    Result<Attr> dir = engine_.GetAttr(parent);
    if (!dir.ok() || session::IsCommittedKind(dir->kind)) return found.status();
    fuse_entry_param miss{};
    miss.ino = 0;
    miss.entry_timeout = kSessionMissTimeout;
    fuse_reply_entry(req, &miss);
    return Status::OK();
  });
}

void UpfsFs::Forget(fuse_ino_t ino, uint64_t nlookup) {
  uint64_t over = 0;
  inodes_.Forget(ino, nlookup, &over);
  if (over != 0) {
    spdlog::warn("forget of inode {}: the kernel returned {} more lookups than were counted", ino,
                 over);
  }
}

void UpfsFs::GetAttr(fuse_req_t req, fuse_ino_t ino) {
  Serve(req, {FuseOp::kGetAttr, ino}, [&]() -> Status {
    UPFS_ASSIGN_OR_RETURN(Attr attr, engine_.GetAttr(ino));
    const struct stat st = ToStat(attr);
    fuse_reply_attr(req, &st, TimesFor(attr.kind).attr);
    return Status::OK();
  });
}

void UpfsFs::SetAttr(fuse_req_t req, fuse_ino_t ino, const struct stat* attr, int to_set) {
  Serve(req, {FuseOp::kSetAttr, ino}, [&]() -> Status {
    session::AttrChange change;
    if (to_set & FUSE_SET_ATTR_MODE) change.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID) change.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) change.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) {
      if (attr->st_size < 0) return Status::InvalidArgument("negative size");
      change.size = static_cast<uint64_t>(attr->st_size);
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      change.mtime_ns = NowNs();
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      change.mtime_ns = int64_t{attr->st_mtim.tv_sec} * 1'000'000'000 + attr->st_mtim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      change.atime_ns = NowNs();
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      change.atime_ns = int64_t{attr->st_atim.tv_sec} * 1'000'000'000 + attr->st_atim.tv_nsec;
    }
    // CTIME is the engine's to maintain: every setattr sets it to now. A
    // change of only that still reaches the engine, which refuses it on
    // the committed side (EROFS) like any other setattr there.
    RequestCredentials caller(proc_, req);
    UPFS_ASSIGN_OR_RETURN(Attr updated, engine_.SetAttr(ino, change, &caller));
    const struct stat st = ToStat(updated);
    fuse_reply_attr(req, &st, TimesFor(updated.kind).attr);
    return Status::OK();
  });
}

void UpfsFs::Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Serve(req, {FuseOp::kMknod, parent, name}, [&]() -> Status {
    // mknod(S_IFREG) is how some tools create files; anything else (fifos,
    // sockets, devices) has no place in an upload.
    if (!S_ISREG(mode)) {
      return Status::NotPermitted("only regular files and directories can be uploaded");
    }
    UPFS_ASSIGN_OR_RETURN(Attr made, engine_.Create(parent, name, mode & 07777, CallerOf(req)));
    ReplyEntry(req, made);
    return Status::OK();
  });
}

void UpfsFs::Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Serve(req, {FuseOp::kMkdir, parent, name}, [&]() -> Status {
    UPFS_ASSIGN_OR_RETURN(Attr made, engine_.Mkdir(parent, name, mode & 07777, CallerOf(req)));
    ReplyEntry(req, made);
    return Status::OK();
  });
}

void UpfsFs::Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Serve(req, {FuseOp::kUnlink, parent, name}, [&]() -> Status {
    Status s = engine_.Unlink(parent, name);
    if (s.IsReadOnly()) s = AssetRemovalStep(req, parent, name, /*is_dir=*/false, std::move(s));
    if (!s.ok()) return s;
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

void UpfsFs::Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Serve(req, {FuseOp::kRmdir, parent, name}, [&]() -> Status {
    Status s = engine_.Rmdir(parent, name);
    if (s.IsReadOnly() && parent != session::kAssetsId) {
      s = AssetRemovalStep(req, parent, name, /*is_dir=*/true, std::move(s));
    }
    if (!s.ok()) return s;
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

// Inside an asset, an unlink or rmdir is refused (`refusal`, EROFS) unless
// the caller is walking the tree to remove the whole asset, as rm -r, rm
// -rf, find -delete and Python's shutil.rmtree do: they hold each
// directory open while they remove its entries, and remove the asset's
// own directory last. Then the step is accepted and changes nothing; the
// last step, rmdir assets/NAME, removes the asset whole in one write. A
// plain `rm assets/NAME/FILE` holds no directory open and gets EROFS, and a
// walk that stops halfway leaves the asset whole (docs/configuration.md,
// "Removing assets").
Status UpfsFs::AssetRemovalStep(fuse_req_t req, fuse_ino_t parent, const char* name, bool is_dir,
                                Status refusal) {
  const std::optional<pid_t> walker = proc_.ProcessOf(fuse_req_ctx(req)->pid);
  if (!walker || proc_.HasOpen(*walker, parent) != true) return refusal;
  Status step = engine_.CheckAssetRemovalStep(parent, name, is_dir, CallerOf(req));
  // ReadOnly: not inside an asset (a session being finished, say) or -o
  // worm; the first refusal says why.
  if (step.IsReadOnly()) return refusal;
  if (step.ok()) {
    spdlog::debug("{} {} in asset directory {} by pid {}: a step of removing the whole asset",
                  is_dir ? "rmdir" : "unlink", name, parent, *walker);
  }
  return step;
}

void UpfsFs::Refuse(fuse_req_t req, FuseOp op, fuse_ino_t parent, const char* name) {
  Serve(req, {op, parent, name}, [&]() -> Status {
    // An asset is a tree of blobs with hashes: a symlink has no bytes to
    // verify and a hard link would make one blob two files. EPERM is what
    // link(2)/symlink(2) return on filesystems that do not support them.
    return Status::NotPermitted(std::string(FuseOpName(op)) +
                                " is not supported: an upload holds regular files and directories");
  });
}

void UpfsFs::Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                    const char* new_name, unsigned int flags) {
  OpInfo op{FuseOp::kRename, parent, name};
  op.id2 = new_parent;
  op.name2 = new_name;
  Serve(req, op, [&]() -> Status {
    if ((flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) != 0) {
      // RENAME_EXCHANGE and RENAME_WHITEOUT: no client of an upload needs
      // them, and an exchange into assets/ would be a commit and an
      // un-commit at once.
      return Status::InvalidArgument(
          fmt::format("rename flags {:#x} are not supported (only RENAME_NOREPLACE)", flags));
    }
    session::CommitInfo committed;
    Status s = engine_.Rename(parent, name, new_parent, new_name, (flags & RENAME_NOREPLACE) != 0,
                              &committed);
    if (!s.ok()) return s;
    // sessions/NAME -> assets/NAME committed the session. No invalidation
    // here, and none could be waited for: the kernel holds both directories
    // locked until this reply. It needs none either: on success it moves
    // the dentry itself (same inode, now the asset root) and drops both
    // directories' attributes; the session side's entries have timeout 0.
    if (!committed.name.empty()) {
      spdlog::debug("rename committed session '{}' (id {})", committed.name, committed.session_id);
    }
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

void UpfsFs::Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                    fuse_file_info* fi) {
  Serve(req, {FuseOp::kCreate, parent, name}, [&]() -> Status {
    Result<Attr> made = engine_.Create(parent, name, mode & 07777, CallerOf(req));
    int open_flags = fi->flags & ~O_TRUNC;
    std::optional<RequestCredentials> opener;
    if (made.status().IsExists() && (fi->flags & O_EXCL) == 0) {
      // The name appeared after the kernel's lookup missed it (another
      // mount's session that this one took over on this create, or a
      // racing create): open(O_CREAT) without O_EXCL opens what is there.
      Result<Attr> there = engine_.Lookup(parent, name);
      if (there.ok() && there->kind == NodeKind::kFile) {
        made = std::move(there);
        open_flags = fi->flags;
        opener.emplace(proc_, req);
      }
    }
    if (!made.ok()) return made.status();
    // The file exists from here on; if the open fails, the caller sees the
    // error and may open it again, as after any failed open(O_CREAT).
    Result<OpenedHandle> opened =
        engine_.OpenHandle(made->id, OpenModeOf(open_flags), opener ? &*opener : nullptr);
    if (opener && opener->Asked()) InvalidateAttrs(made->id);
    if (!opened.ok()) return opened.status();
    const uint64_t id = made->id;
    const uint64_t fh = opened->handle;
    fi->fh = fh;
    fi->direct_io = UploadOnly(fi->flags);
    fi->noflush = SkipsFlush(NodeKind::kFile, fi->flags, engine_.CloseWaitsForWrites());
    const fuse_entry_param e = ToEntry(*made);
    inodes_.Add(id);
    if (fuse_reply_create(req, &e, fi) == -ENOENT) {
      // Interrupted: the kernel has neither the inode nor the handle.
      inodes_.Forget(id, 1);
      ReleaseUnclaimed(id, fh);
    }
    return Status::OK();
  });
}

void UpfsFs::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Serve(req, {FuseOp::kOpen, ino}, [&]() -> Status {
    RequestCredentials opener(proc_, req);
    Result<OpenedHandle> opened = engine_.OpenHandle(ino, OpenModeOf(fi->flags), &opener);
    if (opener.Asked()) InvalidateAttrs(ino);
    if (!opened.ok()) return opened.status();
    const uint64_t fh = opened->handle;
    fi->fh = fh;
    switch (opened->kind) {
      case NodeKind::kFinish:
      case NodeKind::kStatus:
        // .status is a snapshot per open whose length the kernel cannot
        // know; .finish is a manifest the engine consumes. Neither belongs
        // in the page cache.
        fi->direct_io = 1;
        break;
      case NodeKind::kAssetFile:
        // Immutable: pages cached by an earlier open are still right.
        fi->keep_cache = 1;
        break;
      case NodeKind::kFile:
        fi->direct_io = UploadOnly(fi->flags);
        break;
      default:
        break;
    }
    fi->noflush = SkipsFlush(opened->kind, fi->flags, engine_.CloseWaitsForWrites());
    if (opened->kind == NodeKind::kFinish) {
      finish_handles_.Opened(fh, ino, fuse_req_ctx(req)->pid);
    }
    if (fuse_reply_open(req, fi) == -ENOENT) {
      finish_handles_.Released(fh);
      ReleaseUnclaimed(ino, fh);
    }
    return Status::OK();
  });
}

void UpfsFs::Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  OpInfo op{FuseOp::kRead, ino};
  op.offset = off;
  op.length = size;
  Serve(req, op, [&]() -> Status {
    // Answered from the engine's pieces (a committed file's come from the
    // read cache), which the kernel copies from: no buffer of the read's own.
    return engine_.ReadPieces(ino, fi->fh, static_cast<uint64_t>(off), size,
                              [req](const std::vector<std::string_view>& pieces) {
                                std::vector<iovec> iov;
                                iov.reserve(pieces.size());
                                for (std::string_view piece : pieces)
                                  iov.push_back({const_cast<char*>(piece.data()), piece.size()});
                                fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
                              });
  });
}

void UpfsFs::Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                   fuse_file_info* fi) {
  OpInfo op{FuseOp::kWrite, ino};
  op.offset = off;
  op.length = size;
  Serve(req, op, [&]() -> Status {
    // A write-back of cached pages (mmap) comes from no particular writer;
    // a local filesystem keeps the bits for mmap writes too.
    RequestCredentials writer(proc_, req);
    // The file's hash takes the bytes after the reply (Engine::Write), while
    // the client sends its next write: SHA-256 was 40-60 % of this thread's
    // work per byte (docs/performance.md, (c)).
    std::function<void()> after_reply;
    Result<size_t> written =
        engine_.Write(ino, fi->fh, static_cast<uint64_t>(off), std::string_view(buf, size),
                      fi->writepage ? nullptr : &writer, &after_reply);
    if (writer.Asked()) InvalidateAttrs(ino);
    // A refused write to .finish counts too: the next close then reports
    // that nothing was committed, instead of waiting for more text.
    finish_handles_.Wrote(fi->fh);
    if (!written.ok()) return written.status();
    fuse_reply_write(req, *written);
    if (after_reply) {
      // `buf` is libfuse's until this returns. Answered already: a failure
      // here is logged, never answered again.
      try {
        after_reply();
      } catch (...) {
        spdlog::error("{}: hashing after the reply failed (the finish rehashes the file)", op);
      }
    }
    return Status::OK();
  });
}

void UpfsFs::Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpInfo op{FuseOp::kFlush, ino};
  Serve(req, op, [&]() -> Status {
    // For .finish this is the commit (FinishHandles says which flush), and
    // its errno is what close(2) returns. For a session file, on a store
    // that acknowledges writes early, it waits for them (Engine::Fsync);
    // elsewhere it does nothing (and is skipped where it can be: noflush).
    switch (finish_handles_.OnFlush(fi->fh, fuse_req_ctx(req)->pid)) {
      case FinishHandles::Flush::kWait:
        spdlog::debug(
            "flush id={}: a close of .finish before its manifest was written "
            "(a dup2); the commit waits for a later close",
            ino);
        fuse_reply_err(req, 0);
        return Status::OK();
      case FinishHandles::Flush::kRepeat:
        op.repeat = true;
        break;
      case FinishHandles::Flush::kCommit:
        break;
    }
    session::CommitInfo committed;
    Status s = engine_.Flush(ino, fi->fh, &committed);
    if (!s.ok()) return s;
    // close(2) must not return before the next ls/stat/open sees the
    // asset. No directory lock is held for a flush, so waiting is safe.
    if (!committed.name.empty()) InvalidateCommitted(committed, /*wait=*/true);
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

void UpfsFs::Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  OpInfo op{FuseOp::kRelease, ino};
  Serve(req, op, [&]() -> Status {
    // For a .finish whose commit no flush ran, this runs it. The kernel
    // ignores the reply's errno, but a failure is still logged by the
    // funnel (at debug when a flush already reported it).
    op.repeat = finish_handles_.Released(fi->fh);
    Status s = engine_.Release(ino, fi->fh);
    if (!s.ok()) return s;
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

void UpfsFs::Fsync(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, FuseOp op) {
  Serve(req, {op, ino}, [&]() -> Status {
    // On the local store nothing to do: writes are already in the store
    // when write(2) returns, and a session's durability point is its
    // commit, a synced write (see upfs_fs.h). Returning ENOSYS would do
    // the same in the kernel, but silently; this says it on purpose. On a
    // store that acknowledges writes early, fsync of a file waits for
    // them (Engine::Fsync).
    if (fi) UPFS_RETURN_IF_ERROR(engine_.Fsync(ino, fi->fh));
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

void UpfsFs::OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Serve(req, {FuseOp::kOpenDir, ino}, [&]() -> Status {
    UPFS_ASSIGN_OR_RETURN(Attr attr, engine_.GetAttr(ino));
    if (!session::IsDirectoryKind(attr.kind)) {
      return Status::NotDirectory("inode " + std::to_string(ino) + " is not a directory");
    }
    uint64_t dotdot = ino;
    switch (attr.kind) {
      case NodeKind::kRoot:
      case NodeKind::kSessionsDir:
      case NodeKind::kAssetsDir:
        dotdot = session::kRootId;
        break;
      case NodeKind::kSessionRoot:
        dotdot = session::kSessionsId;
        break;
      case NodeKind::kAssetRoot:
        dotdot = session::kAssetsId;
        break;
      default:
        break;
    }
    const bool immutable = TimesFor(attr.kind).attr >= kImmutableTimeout;
    const bool full_entries = attr.kind == NodeKind::kRoot || session::IsCommittedKind(attr.kind);
    const uint64_t fh = AddDirHandle(std::make_shared<DirHandle>(ino, dotdot, full_entries));
    fi->fh = fh;
    if (immutable) {
      // An asset's directories never change: let the kernel keep listings.
      fi->cache_readdir = 1;
      fi->keep_cache = 1;
    }
    if (fuse_reply_open(req, fi) == -ENOENT) RemoveDirHandle(fh);
    return Status::OK();
  });
}

void UpfsFs::ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                     bool plus) {
  OpInfo op{plus ? FuseOp::kReadDirPlus : FuseOp::kReadDir, ino};
  op.offset = off;
  op.length = size;
  Serve(req, op, [&]() -> Status {
    std::shared_ptr<DirHandle> dir = FindDirHandle(fi->fh);
    if (!dir) return Status::InvalidArgument("unknown directory handle");

    std::shared_ptr<const DirHandle::Listing> listing;
    {
      MutexLock lock(dir->mu);
      listing = dir->listing;
    }
    // Offset 0 is a (re)start: list afresh, so a rewinddir sees what
    // changed (rm -r rereads a directory after unlinking its entries).
    // The kernel serializes reads of one handle, so no reader of this
    // handle is midway through the old listing.
    if (off == 0 || !listing) {
      UPFS_ASSIGN_OR_RETURN(std::vector<session::DirEntry> entries, engine_.ReadDir(ino));
      auto fresh = std::make_shared<DirHandle::Listing>();
      fresh->reserve(entries.size() + 2);
      fresh->push_back({".", dir->id, S_IFDIR | 0755});
      fresh->push_back({"..", dir->dotdot, S_IFDIR | 0755});
      for (session::DirEntry& entry : entries) fresh->push_back(std::move(entry));
      listing = std::move(fresh);
      MutexLock lock(dir->mu);
      dir->listing = listing;
    }

    std::vector<char> buf(size);
    size_t used = 0;
    std::vector<uint64_t> counted;  // lookups handed out in this reply
    for (size_t i = static_cast<size_t>(off); i < listing->size(); ++i) {
      const session::DirEntry& entry = (*listing)[i];
      const off_t next = static_cast<off_t>(i + 1);
      char* dst = buf.data() + used;
      const size_t room = size - used;
      size_t need = 0;
      if (plus) {
        fuse_entry_param e{};
        e.attr.st_ino = entry.id;
        e.attr.st_mode = entry.mode;
        // ino 0: the kernel lists the name without creating an inode or
        // taking a reference. "." and ".." always go out that way; the
        // kernel ignores any inode given for them (and would not forget it).
        bool full = false;
        if (dir->full_entries && !IsDotOrDotDot(entry.name)) {
          Result<Attr> attr = engine_.GetAttr(entry.id);
          if (attr.ok()) {
            e = ToEntry(*attr);
            full = true;
          }
          // A failure means the entry went away since the listing; it goes
          // out as a bare name and a later lookup will report it.
        }
        need = fuse_add_direntry_plus(req, dst, room, entry.name.c_str(), &e, next);
        if (need > room) break;
        if (full) {
          counted.push_back(entry.id);
          inodes_.Add(entry.id);
        }
      } else {
        struct stat st {};
        st.st_ino = entry.id;
        st.st_mode = entry.mode;
        need = fuse_add_direntry(req, dst, room, entry.name.c_str(), &st, next);
        if (need > room) break;
      }
      used += need;
    }
    if (fuse_reply_buf(req, buf.data(), used) == -ENOENT) {
      // Interrupted: the kernel took none of these references.
      for (uint64_t id : counted) inodes_.Forget(id, 1);
    }
    return Status::OK();
  });
}

void UpfsFs::ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Serve(req, {FuseOp::kReleaseDir, ino}, [&]() -> Status {
    RemoveDirHandle(fi->fh);
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

namespace {

Status StatStoreDir(const std::string& dir, struct statvfs* st) {
  if (::statvfs(dir.c_str(), st) != 0) {
    const int err = errno;
    return Status::IOError(fmt::format("statvfs of store '{}': {}", dir, std::strerror(err)));
  }
  return Status::OK();
}

}  // namespace

Result<store::Space> UpfsFs::StoreSpace() {
  if (options_.store_dir.empty()) return engine_.GetSpace();
  struct statvfs st {};
  UPFS_RETURN_IF_ERROR(StatStoreDir(options_.store_dir, &st));
  // What statfs shows a user: blocks available to anyone but root.
  return store::Space{static_cast<uint64_t>(st.f_blocks) * st.f_frsize,
                      static_cast<uint64_t>(st.f_bavail) * st.f_frsize};
}

void UpfsFs::StatFs(fuse_req_t req, fuse_ino_t ino) {
  Serve(req, {FuseOp::kStatFs, ino}, [&]() -> Status {
    struct statvfs st {};
    if (!options_.store_dir.empty()) {
      UPFS_RETURN_IF_ERROR(StatStoreDir(options_.store_dir, &st));
    } else if (Result<store::Space> space = engine_.GetSpace(); space.ok()) {
      // A store with no directory reports its own space, in 4 KiB blocks.
      st.f_bsize = st.f_frsize = kDirBlockSize;
      st.f_blocks = space->total_bytes / kDirBlockSize;
      st.f_bfree = st.f_bavail = space->free_bytes / kDirBlockSize;
    } else if (!space.status().IsNotSupported()) {
      return space.status();
    }
    if (st.f_bsize == 0) st.f_bsize = kDirBlockSize;
    if (st.f_frsize == 0) st.f_frsize = st.f_bsize;
    st.f_namemax = session::kMaxNameLength;
    fuse_reply_statfs(req, &st);
    return Status::OK();
  });
}

void UpfsFs::SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                      size_t size, int flags) {
  Serve(req, {FuseOp::kSetXattr, ino, name}, [&]() -> Status {
    if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
      // The engine has no create/replace mode; check first. Not atomic
      // against a concurrent setxattr of the same name on the same node.
      Result<std::string> current = engine_.GetXattr(ino, name);
      if (!current.ok() && !current.status().IsNoAttribute()) {
        return current.status();
      }
      if ((flags & XATTR_CREATE) && current.ok()) {
        return Status::Exists(fmt::format("xattr '{}' already set (XATTR_CREATE)", name));
      }
      if ((flags & XATTR_REPLACE) && !current.ok()) return current.status();
    }
    Status s = engine_.SetXattr(ino, name, std::string_view(value, size));
    if (!s.ok()) return s;
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

void UpfsFs::GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Serve(req, {FuseOp::kGetXattr, ino, name}, [&]() -> Status {
    UPFS_ASSIGN_OR_RETURN(std::string value, engine_.GetXattr(ino, name));
    if (size == 0) {
      fuse_reply_xattr(req, value.size());  // a probe for the size
    } else if (value.size() > size) {
      // Part of the protocol (the caller retries with a bigger buffer),
      // not a failure of anything.
      spdlog::debug("getxattr id={} name='{}': {} bytes do not fit in {}: ERANGE", ino, name,
                    value.size(), size);
      fuse_reply_err(req, ERANGE);
    } else {
      fuse_reply_buf(req, value.data(), value.size());
    }
    return Status::OK();
  });
}

void UpfsFs::ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Serve(req, {FuseOp::kListXattr, ino}, [&]() -> Status {
    UPFS_ASSIGN_OR_RETURN(std::vector<std::string> names, engine_.ListXattr(ino));
    std::string list;  // each name followed by its NUL, as listxattr(2) returns them
    for (const std::string& name : names) {
      list.append(name);
      list.push_back('\0');
    }
    if (size == 0) {
      fuse_reply_xattr(req, list.size());
    } else if (list.size() > size) {
      spdlog::debug("listxattr id={}: {} bytes do not fit in {}: ERANGE", ino, list.size(), size);
      fuse_reply_err(req, ERANGE);
    } else {
      fuse_reply_buf(req, list.data(), list.size());
    }
    return Status::OK();
  });
}

void UpfsFs::RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Serve(req, {FuseOp::kRemoveXattr, ino, name}, [&]() -> Status {
    Status s = engine_.RemoveXattr(ino, name);
    if (!s.ok()) return s;
    fuse_reply_err(req, 0);
    return Status::OK();
  });
}

// ---- wiring ----

const fuse_lowlevel_ops& UpfsFs::Operations() {
  static const fuse_lowlevel_ops kOps = [] {
    fuse_lowlevel_ops ops{};
    ops.init = [](void* userdata, fuse_conn_info* conn) {
      static_cast<UpfsFs*>(userdata)->Init(conn);
    };
    ops.lookup = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
      Self(req)->Lookup(req, parent, name);
    };
    // forget has no reply but fuse_reply_none, and cannot fail.
    ops.forget = [](fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
      Self(req)->Forget(ino, nlookup);
      fuse_reply_none(req);
    };
    ops.forget_multi = [](fuse_req_t req, size_t count, fuse_forget_data* forgets) {
      UpfsFs* self = Self(req);
      for (size_t i = 0; i < count; ++i) self->Forget(forgets[i].ino, forgets[i].nlookup);
      fuse_reply_none(req);
    };
    ops.getattr = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
      Self(req)->GetAttr(req, ino);
    };
    ops.setattr = [](fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                     fuse_file_info*) { Self(req)->SetAttr(req, ino, attr, to_set); };
    ops.mknod = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
      Self(req)->Mknod(req, parent, name, mode);
    };
    ops.mkdir = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
      Self(req)->Mkdir(req, parent, name, mode);
    };
    ops.unlink = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
      Self(req)->Unlink(req, parent, name);
    };
    ops.rmdir = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
      Self(req)->Rmdir(req, parent, name);
    };
    ops.symlink = [](fuse_req_t req, const char*, fuse_ino_t parent, const char* name) {
      Self(req)->Refuse(req, FuseOp::kSymlink, parent, name);
    };
    ops.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t new_parent, const char* new_name) {
      Self(req)->Refuse(req, FuseOp::kLink, new_parent, new_name);
    };
    ops.rename = [](fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                    const char* new_name, unsigned int flags) {
      Self(req)->Rename(req, parent, name, new_parent, new_name, flags);
    };
    ops.create = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                    fuse_file_info* fi) { Self(req)->Create(req, parent, name, mode, fi); };
    ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
      Self(req)->Open(req, ino, fi);
    };
    ops.read = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
      Self(req)->Read(req, ino, size, off, fi);
    };
    ops.write = [](fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                   fuse_file_info* fi) { Self(req)->Write(req, ino, buf, size, off, fi); };
    ops.flush = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
      Self(req)->Flush(req, ino, fi);
    };
    ops.release = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
      Self(req)->Release(req, ino, fi);
    };
    ops.fsync = [](fuse_req_t req, fuse_ino_t ino, int, fuse_file_info* fi) {
      Self(req)->Fsync(req, ino, fi, FuseOp::kFsync);
    };
    ops.opendir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
      Self(req)->OpenDir(req, ino, fi);
    };
    ops.readdir = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
      Self(req)->ReadDir(req, ino, size, off, fi, /*plus=*/false);
    };
    ops.readdirplus = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                         fuse_file_info* fi) {
      Self(req)->ReadDir(req, ino, size, off, fi, /*plus=*/true);
    };
    ops.releasedir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
      Self(req)->ReleaseDir(req, ino, fi);
    };
    ops.fsyncdir = [](fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
      Self(req)->Fsync(req, ino, nullptr, FuseOp::kFsyncDir);
    };
    ops.statfs = [](fuse_req_t req, fuse_ino_t ino) { Self(req)->StatFs(req, ino); };
    ops.setxattr = [](fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                      size_t size,
                      int flags) { Self(req)->SetXattr(req, ino, name, value, size, flags); };
    ops.getxattr = [](fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
      Self(req)->GetXattr(req, ino, name, size);
    };
    ops.listxattr = [](fuse_req_t req, fuse_ino_t ino, size_t size) {
      Self(req)->ListXattr(req, ino, size);
    };
    ops.removexattr = [](fuse_req_t req, fuse_ino_t ino, const char* name) {
      Self(req)->RemoveXattr(req, ino, name);
    };
    // Not wired, on purpose: access (default_permissions makes the kernel
    // check modes itself), locks (the kernel keeps them locally), write_buf
    // (no splice, see Init), fallocate/lseek/copy_file_range (the kernel
    // falls back to plain reads and writes).
    return ops;
  }();
  return kOps;
}

}  // namespace upfs::fs
