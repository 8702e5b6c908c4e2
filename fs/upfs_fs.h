// UpfsFs: the libfuse low-level adapter. It turns kernel requests into
// session::Engine calls and Engine results into replies; it holds no
// filesystem state of its own beyond what the protocol needs (lookup
// counts, directory listings of open directory handles) and the kernel
// cache policy.
//
// The contract with the kernel:
//   * A FUSE inode number is the engine id (1 = root, 2 = sessions/,
//     3 = assets/). Ids are never reused, so generations are always 0.
//   * Every handler has one shape: decode, call the engine, reply exactly
//     once. Every failure goes through one funnel that logs it once (with
//     the op, id, name, offset and the Status message) and replies; its
//     errno and log level come from the table in fs/errno_table.h. No
//     exception leaves a callback.
//   * Cache policy: the committed side (assets/NAME/...) is immutable and
//     cached for an hour, open files keep their page cache. root, sessions/
//     and assets/ have fixed names (cached for an hour) and attributes that
//     change with every session (cached for a second, and invalidated when
//     upfs changes them behind the kernel's back). On the session side,
//     names, misses and attributes are cached for a second: every change
//     there comes through this kernel, which updates what it cached, except
//     the few upfs makes itself, which it invalidates (commit and expiry:
//     the session's entry; setuid/setgid cleared by a write: the file's
//     attributes). `.finish` and `.status` are never cached. Misses under
//     assets/ are not cached at all: a commit through `.finish` makes names
//     appear there behind the kernel's back.
//   * Closing `.finish` (flush) commits (see FinishHandles for which
//     flush); before the reply, the kernel's entries for sessions/NAME and
//     assets/NAME and the attributes of both parents are invalidated, so
//     the next ls/stat/open sees the asset.
//   * fsync returns 0 without syncing: uploads are written through to the
//     store as they arrive, and a session's durability point is its commit
//     (a synced write); after a crash `.status` shows what arrived.
//   * symlink, link and mknod of anything but a regular file fail with
//     EPERM: a session is a tree of regular files and directories.
//
// Thread safety: every handler may run concurrently on the threads of the
// multi-threaded session loop. Start() must happen before the loop starts
// and Stop() after it has returned; SweepExpiredSessions() may run on
// another thread between the two.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/mutex.h"
#include "fs/cache_invalidator.h"
#include "fs/finish_handles.h"
#include "fs/fuse_api.h"
#include "fs/inode_table.h"
#include "fs/proc_fs.h"
#include "fs/request_counters.h"
#include "session/engine.h"

namespace upfs::fs {

struct FsOptions {
  // Where the mount is; lets FinishHandles find the mount's descriptors in
  // /proc. Empty: an empty manifest commits at release (see FinishHandles).
  std::string mountpoint;
  // Where procfs is mounted.
  std::string proc_root = "/proc";
  // Directory whose filesystem statfs reports (free space for uploads:
  // file managers refuse to copy into a mount reporting none). Empty:
  // statfs reports only name limits.
  std::string store_dir;
  // How long a flush that committed waits for the kernel to drop its
  // caches before replying anyway (see CacheInvalidator). Normally the
  // wait is microseconds; it only runs long while another request holds
  // the sessions/ or assets/ directory lock.
  std::chrono::milliseconds invalidation_wait{5000};
};

class UpfsFs {
 public:
  // `engine` must outlive every call into this object but the destructor.
  UpfsFs(session::Engine* engine, FsOptions options);
  ~UpfsFs();
  UpfsFs(const UpfsFs&) = delete;
  UpfsFs& operator=(const UpfsFs&) = delete;

  // The operation table for fuse_session_new(); its userdata must be a
  // pointer to the UpfsFs serving the session.
  static const fuse_lowlevel_ops& Operations();

  // Starts the cache invalidation thread for `se`. Call after
  // fuse_session_new() and before the session loop.
  void Start(fuse_session* se);
  // Stops it. Call after the session loop returned and before
  // fuse_session_unmount(), which closes the descriptor it writes to.
  void Stop();

  // Expires idle sessions (Engine::ExpireIdle, which logs each) and drops
  // the kernel's entries for them. Called by the expiry sweeper's thread.
  void SweepExpiredSessions();

  const InodeTable& inodes() const { return inodes_; }
  // Requests served and failed, by operation (and errno), for metrics.
  RequestCounters& requests() { return requests_; }
  // The space statfs reports: the file system of FsOptions::store_dir, or
  // the store's own (Engine::GetSpace). NotSupported when there is none.
  Result<store::Space> StoreSpace();

 private:
  struct DirHandle;

  // Handlers, one per operation, wired up in Operations().
  void Init(fuse_conn_info* conn);
  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Forget(fuse_ino_t ino, uint64_t nlookup);
  void GetAttr(fuse_req_t req, fuse_ino_t ino);
  void SetAttr(fuse_req_t req, fuse_ino_t ino, const struct stat* attr, int to_set);
  void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Refuse(fuse_req_t req, FuseOp op, fuse_ino_t parent, const char* name);
  Status AssetRemovalStep(fuse_req_t req, fuse_ino_t parent, const char* name, bool is_dir,
                          Status refusal);
  void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags);
  void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi);
  void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Fsync(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, FuseOp op);
  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
               bool plus);
  void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void StatFs(fuse_req_t req, fuse_ino_t ino);
  void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags);
  void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
  void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size);
  void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name);

  // Replies `attr` as a new kernel reference (lookup, mkdir, mknod),
  // counting it in inodes_.
  void ReplyEntry(fuse_req_t req, const session::Attr& attr);
  // Releases an engine handle the kernel never received. Never throws.
  void ReleaseUnclaimed(uint64_t id, uint64_t handle) noexcept;
  // Makes a commit visible in the kernel's caches; with `wait`, returns
  // once the kernel has dropped them (or the wait timed out).
  // Drops the kernel's cached attributes of `ino` (waited for): the
  // engine changed them while serving a request that does not return them
  // (setuid/setgid cleared by a write or an O_TRUNC open).
  void InvalidateAttrs(uint64_t ino) noexcept;
  void InvalidateCommitted(const session::CommitInfo& committed, bool wait);

  uint64_t AddDirHandle(std::shared_ptr<DirHandle> handle);
  std::shared_ptr<DirHandle> FindDirHandle(uint64_t fh);
  void RemoveDirHandle(uint64_t fh) noexcept;

  session::Engine& engine_;
  const FsOptions options_;
  InodeTable inodes_;
  RequestCounters requests_;
  ProcFs proc_;  // its mount point is set by Start(), before the loop
  FinishHandles finish_handles_{&proc_};

  // Set by Start() before the loop runs, reset by Stop() after it ended;
  // handlers only read it in between.
  std::unique_ptr<CacheInvalidator> invalidator_;

  // Open directory handles, by the number given to the kernel as fh.
  Mutex dirs_mu_;
  uint64_t next_dir_handle_ GUARDED_BY(dirs_mu_) = 1;
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> dirs_ GUARDED_BY(dirs_mu_);
};

}  // namespace upfs::fs
