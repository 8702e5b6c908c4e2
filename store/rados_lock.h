// RadosStoreLock: the lease of one process on a upfs store in a RADOS pool
// or namespace. Mounts share the store, each with a lease of its own; an
// offline tool (fsck) has it to itself.
//
// How: a cls lock "upfs.store" on the object upfs.lock of the store's
// namespace, shared by mounts (each its own cookie), exclusive for fsck
// (so fsck waits for no mount and no mount starts under fsck), taken for
// the lease (`-o lease`, default 30 s) and renewed every lease / 3 by a
// thread of its own. cls_lock forgets a locker whose lease ran out, so the
// lock's lockers are the live mounts (MountLease::LiveIds). The cookie
// names the holder (host, boot id, PID, start time, a random nonce: the
// mount's id, and its client's address), so that a refusal and a holder's
// log say who, a holder that died on this machine since it booted (kill
// -9: its lease stays until it runs out) counts as gone at once, and
// another mount can fence it: `ceph osd blocklist add` of its address
// (MountLease::Fence), after which the OSDs refuse every operation of
// that client. That is what makes a takeover safe against a holder that
// was only paused (SIGSTOP, a VM stalled): cls locks alone cannot stop
// writes to the stripe and extent objects, which carry no lock.
//
// While its last renewal is older than the lease, a process does not write
// (Held() fails: RadosKv and RadosBlobFiles refuse every commit and
// write); it takes the lease again when the cluster answers, unless it
// was fenced meanwhile (then OSDs answer EBLOCKLISTED, and Held() fails
// for good: the mount must be restarted, with a new client).
//
// Thread safety: as MountLease.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <rados/librados.hpp>

#include "base/mutex.h"
#include "base/status.h"
#include "store/mount_lease.h"
#include "store/rados_connection.h"

namespace upfs::store {

class RadosStoreLock : public MountLease {
 public:
  static constexpr const char* kObject = "upfs.lock";
  static constexpr const char* kName = "upfs.store";
  static constexpr std::chrono::seconds kDefaultLease = kDefaultRadosLease;
  // How long a fenced client stays cut off: far beyond any pause after
  // which its queued operations could still arrive.
  static constexpr uint32_t kFenceSeconds = 7 * 24 * 3600;

  // Takes this process's lease on the store in `pool`/`ns` for `purpose`:
  // "mount" shares the store with other mounts; anything else ("fsck")
  // has it to itself. Busy, naming the holder, when that cannot be (a
  // holder that died on this host loses its lock).
  static Result<std::unique_ptr<RadosStoreLock>> Acquire(
      std::shared_ptr<RadosConnection> conn, const std::string& pool, const std::string& ns,
      const std::string& purpose, std::chrono::seconds lease = kDefaultLease);
  // Stops renewing and releases the lock.
  ~RadosStoreLock() override;
  RadosStoreLock(const RadosStoreLock&) = delete;
  RadosStoreLock& operator=(const RadosStoreLock&) = delete;

  const std::string& Id() const override { return id_; }
  const std::string& Description() const override { return cookie_; }
  Status Held() const override;
  Result<std::set<std::string>> LiveIds() override;
  Status Fence(const std::string& description) override;
  const std::string& cookie() const { return cookie_; }

  // Tests: the cookie describing this process, and whether a cookie names
  // a process of this machine's boot that no longer runs.
  static std::string CookieOfThisProcess(const std::string& purpose,
                                         const std::string& address = "");
  static bool NamesDeadLocalProcess(const std::string& cookie);
  // A cookie's "key=value" field, or "".
  static std::string FieldOf(const std::string& cookie, const std::string& key);

 private:
  RadosStoreLock(std::shared_ptr<RadosConnection> conn, librados::IoCtx io, std::string where,
                 std::string cookie, bool exclusive, std::chrono::seconds lease);
  // One attempt: 0 when this process holds the lock afterwards.
  int Lock(bool renew);
  // The lockers, less those that name a dead process of this machine
  // (whose locks are broken on the way).
  int ListLive(std::list<librados::locker_t>* live, int* exclusive);
  void RenewLoop();

  const std::shared_ptr<RadosConnection> conn_;
  mutable librados::IoCtx io_;
  const std::string where_;
  const std::string cookie_;
  const std::string id_;
  const bool exclusive_;
  const std::chrono::seconds lease_;
  Mutex mu_;
  CondVar cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  mutable Mutex lost_mu_;
  Status lost_ GUARDED_BY(lost_mu_);  // set once, never cleared
  std::atomic<bool> fenced_{false};
  // steady_clock ns when the last successful lock or renewal was sent.
  std::atomic<int64_t> renewed_ns_{0};
  std::thread renewer_;  // last: started once everything above exists
};

}  // namespace upfs::store
