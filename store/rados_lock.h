// RadosStoreLock: one process at a time serves (or checks) a upfs store in
// a RADOS pool or namespace, as LevelDB's LOCK file does for a directory.
//
// Why: two daemons on one store would each take the other for a process
// that crashed, roll its commits under way forward, drop the records of its
// unsynced writes and reclaim its blobs (KvStore::BeginUse); and each keeps
// its sessions in memory. Until several mounts share a store (leases per
// session, failover and fencing), a second mount is refused.
//
// How: an exclusive cls lock ("upfs.store") on the object upfs.lock of the
// store's namespace, taken for kLease and renewed every kLease / 3 by a
// thread of its own. The cookie names the holder (host, boot id, PID, the
// process's start time, a random nonce), so that a refusal says who holds
// the store, and a holder that died on this machine since it booted
// (kill -9: its lock stays until it expires) is recognized and its lock
// broken at once, as a restart after a crash must not wait out the lease.
// The boot id, not the host name, tells this machine: clones of one image
// may share a name. Each holder also writes its cookie in
// the object's xattr "holder" once it has the lock: after a renewal that
// failed (the cluster did not answer), the lock is taken again only if no
// one else held it meanwhile (the xattr still names us); else this process
// stops writing (Held() false: RadosKv and RadosBlobFiles refuse every
// commit and write), for another process may have changed the store
// under it. A live holder on another host is waited out by nothing: the
// refusal says to unmount it.
//
// Thread safety: Held() and holder() may be called from any thread.
#pragma once

#include <rados/librados.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/rados_connection.h"
#include "store/status.h"

namespace upfs::store {

class RadosStoreLock {
 public:
  static constexpr const char* kObject = "upfs.lock";
  static constexpr const char* kName = "upfs.store";
  static constexpr std::chrono::seconds kLease{30};

  // Takes the lock of the store in `pool`/`ns` for `purpose` ("mount",
  // "fsck": said to a process refused). Busy, naming the holder, when a
  // live process holds it; a dead holder on this host loses it.
  static Result<std::unique_ptr<RadosStoreLock>> Acquire(std::shared_ptr<RadosConnection> conn,
                                                         const std::string& pool, const std::string& ns,
                                                         const std::string& purpose);
  // Stops renewing and releases the lock.
  ~RadosStoreLock();
  RadosStoreLock(const RadosStoreLock&) = delete;
  RadosStoreLock& operator=(const RadosStoreLock&) = delete;

  // OK while this process holds the store; else why it may no longer write.
  Status Held() const;
  const std::string& cookie() const { return cookie_; }

  // Tests: the cookie describing this process, and whether a cookie names
  // a process of this machine's boot that no longer runs.
  static std::string CookieOfThisProcess(const std::string& purpose);
  static bool NamesDeadLocalProcess(const std::string& cookie);

 private:
  RadosStoreLock(std::shared_ptr<RadosConnection> conn, librados::IoCtx io, std::string where, std::string cookie);
  // One attempt: 0 when this process holds the lock afterwards.
  int Lock(bool renew);
  Status WriteHolder();
  void RenewLoop();

  const std::shared_ptr<RadosConnection> conn_;
  mutable librados::IoCtx io_;
  const std::string where_;
  const std::string cookie_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  mutable std::mutex lost_mu_;
  Status lost_;  // GUARDED_BY(lost_mu_): set once, never cleared
  std::atomic<bool> held_{true};
  std::thread renewer_;  // last: started once everything above exists
};

}  // namespace upfs::store
