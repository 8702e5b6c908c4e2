// CacheInvalidator: tells the kernel to drop cached entries and attributes,
// from a thread of its own.
//
// Why a thread: a notification is handled inside the write(2) to
// /dev/fuse, and invalidating an entry takes the parent directory's inode
// lock. If that lock is held by a request waiting for a FUSE worker (a
// lookup or mkdir in sessions/), a worker sending the notification itself
// would wait for that request, and with every worker doing so the mount
// would deadlock. Here only this thread waits on kernel locks; a handler
// that must not reply before the kernel has dropped its caches (flush of
// .finish) waits for its batch with a bound, and so can always reply.
//
// Never submit from a handler whose directory the kernel holds locked for
// that very request (rename, unlink, mkdir, create... of that directory)
// and then wait: the batch cannot be sent before the handler replies. Such
// handlers do not need it anyway; the kernel updates its own dentries for
// the operations it sends.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"

namespace upfs::fs {

// One kernel cache invalidation.
struct Invalidation {
  enum class Kind {
    kEntry,  // the dentry `name` in directory `ino`, positive or negative
    kInode,  // the attributes and cached data of inode `ino`
    kAttrs,  // the attributes of inode `ino` only (its cached pages stay)
  };
  Kind kind = Kind::kInode;
  uint64_t ino = 0;
  std::string name;

  static Invalidation Entry(uint64_t parent, std::string name) {
    return {Kind::kEntry, parent, std::move(name)};
  }
  static Invalidation Inode(uint64_t ino) { return {Kind::kInode, ino, {}}; }
  static Invalidation Attrs(uint64_t ino) { return {Kind::kAttrs, ino, {}}; }
};

class CacheInvalidator {
 public:
  // Sends one invalidation to the kernel; returns 0 or a negative errno
  // (-ENOENT: the kernel had nothing cached for it, which is fine).
  using Sender = std::function<int(const Invalidation&)>;

  // Starts the sending thread.
  explicit CacheInvalidator(Sender send);
  // Stop()s.
  ~CacheInvalidator();
  CacheInvalidator(const CacheInvalidator&) = delete;
  CacheInvalidator& operator=(const CacheInvalidator&) = delete;

  // Queues `batch`, sent in order after every batch queued before it, and
  // waits up to `wait` for it to be sent. Returns true when it was sent in
  // time; false on timeout (it is still sent later) or after Stop() (it is
  // dropped). A zero `wait` only queues.
  bool Submit(std::vector<Invalidation> batch, std::chrono::milliseconds wait);

  // Sends nothing more, drops what is queued and joins the thread. A send
  // in progress is finished first. Idempotent.
  void Stop();

 private:
  struct Job {
    std::vector<Invalidation> batch;
    std::promise<void> sent;
  };

  void Run();

  const Sender send_;
  Mutex mu_;
  CondVar wake_;
  std::deque<std::shared_ptr<Job>> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;  // started last, in the constructor
};

}  // namespace upfs::fs
