#include "store/rados_lock.h"

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <list>
#include <random>
#include <sstream>

#include <spdlog/spdlog.h>

namespace upfs::store {

namespace {

std::string HostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return "unknown";
  return host;
}

// This boot of this machine: two machines cloned from one image may share
// a host name, never a boot id.
std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!std::getline(in, id) || id.empty() || id.find(' ') != std::string::npos) return "unknown";
  return id;
}

// Field 22 of /proc/PID/stat, the process's start time in clock ticks
// since boot: a PID reused by a later process has another.
std::string StartTimeOf(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return "";
  const size_t comm_end = stat.rfind(')');  // the command may hold spaces
  if (comm_end == std::string::npos) return "";
  std::istringstream fields(stat.substr(comm_end + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string RadosStoreLock::FieldOf(const std::string& cookie, const std::string& key) {
  std::istringstream words(cookie);
  std::string word;
  while (words >> word) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return "";
}

std::string RadosStoreLock::CookieOfThisProcess(const std::string& purpose,
                                                const std::string& address) {
  std::random_device rd;
  char nonce[17];
  std::snprintf(nonce, sizeof(nonce), "%08x%08x", rd(), rd());
  const std::string pid = std::to_string(::getpid());
  std::string cookie = "upfs-" + purpose + " host=" + HostName() + " boot=" + BootId() +
                       " pid=" + pid + " start=" + StartTimeOf(pid) + " nonce=" + nonce;
  if (!address.empty()) cookie += " addr=" + address;
  return cookie;
}

bool RadosStoreLock::NamesDeadLocalProcess(const std::string& cookie) {
  const std::string pid = FieldOf(cookie, "pid");
  const std::string start = FieldOf(cookie, "start");
  const std::string boot = FieldOf(cookie, "boot");
  if (boot.empty() || boot == "unknown" || boot != BootId() || pid.empty() || start.empty())
    return false;
  if (pid.find_first_not_of("0123456789") != std::string::npos) return false;
  // Gone, or the PID now names a process started at another time.
  return StartTimeOf(pid) != start;
}

RadosStoreLock::RadosStoreLock(std::shared_ptr<RadosConnection> conn, librados::IoCtx io,
                               std::string where, std::string cookie, bool exclusive,
                               std::chrono::seconds lease)
    : conn_(std::move(conn)),
      io_(std::move(io)),
      where_(std::move(where)),
      cookie_(std::move(cookie)),
      id_(FieldOf(cookie_, "nonce")),
      exclusive_(exclusive),
      lease_(lease) {}

int RadosStoreLock::Lock(bool renew) {
  timeval lease{static_cast<time_t>(lease_.count()), 0};
  const uint8_t flags = renew ? LIBRADOS_LOCK_FLAG_MAY_RENEW : 0;
  const int64_t sent = SteadyNs();
  const int rc =
      exclusive_ ? io_.lock_exclusive(kObject, kName, cookie_, "upfs: " + where_, &lease, flags)
                 : io_.lock_shared(kObject, kName, cookie_, "", "upfs: " + where_, &lease, flags);
  if (rc == 0) renewed_ns_.store(sent, std::memory_order_release);
  return rc;
}

int RadosStoreLock::ListLive(std::list<librados::locker_t>* live, int* exclusive) {
  std::string tag;
  std::list<librados::locker_t> lockers;
  const int rc = io_.list_lockers(kObject, kName, exclusive, &tag, &lockers);
  if (rc == -ENOENT) return 0;
  if (rc < 0) return rc;
  for (librados::locker_t& l : lockers) {
    if (NamesDeadLocalProcess(l.cookie)) {
      spdlog::warn("{}: the process that held '{}' is gone: breaking its lock", where_, l.cookie);
      if (int broken = io_.break_lock(kObject, kName, l.client, l.cookie);
          broken < 0 && broken != -ENOENT) {
        spdlog::warn("{}: breaking the lock of a dead process failed: {}", where_,
                     FromRados(broken, "break_lock").ToString());
      }
      continue;
    }
    live->push_back(std::move(l));
  }
  return 0;
}

Result<std::unique_ptr<RadosStoreLock>> RadosStoreLock::Acquire(
    std::shared_ptr<RadosConnection> conn, const std::string& pool, const std::string& ns,
    const std::string& purpose, std::chrono::seconds lease) {
  const std::string where = "rados pool " + pool + (ns.empty() ? "" : " namespace " + ns);
  auto io = conn->OpenPool(pool, ns);
  UPFS_RETURN_IF_ERROR(io.status().WithContext(where));
  const std::string address = conn->rados().get_addrs();
  const bool exclusive = purpose != "mount";
  std::unique_ptr<RadosStoreLock> lock(new RadosStoreLock(
      conn, std::move(io).value(), where, CookieOfThisProcess(purpose, address), exclusive, lease));
  int rc = lock->Lock(false);
  if (rc == -EBUSY || rc == -EEXIST) {
    // Dead holders of this machine lose their locks; then once more.
    std::list<librados::locker_t> live;
    int kind = 0;
    if (lock->ListLive(&live, &kind) == 0) rc = lock->Lock(false);
    if (rc == -EBUSY || rc == -EEXIST) {
      std::string holders;
      for (const librados::locker_t& l : live) {
        holders += (holders.empty() ? "'" : ", '") + l.cookie + "' (" + l.client + " at " +
                   l.address + ")";
      }
      if (holders.empty()) holders = "another process";
      return Status::Busy(
          where + " is in use by " + holders + "; " +
          (exclusive ? "upfs " + purpose + " needs it to itself (unmount every mount of it)"
                     : "it has the store to itself (wait for it to end)"));
    }
  }
  UPFS_RETURN_IF_ERROR(FromRados(rc, std::string("locking ") + kObject).WithContext(where));
  spdlog::info("{}: lease of {} s taken as '{}'", where, lease.count(), lock->cookie_);
  lock->renewer_ = std::thread([l = lock.get()] { l->RenewLoop(); });
  return lock;
}

Status RadosStoreLock::Held() const {
  if (fenced_.load(std::memory_order_acquire)) {
    MutexLock lock(lost_mu_);
    return lost_;
  }
  const int64_t age = SteadyNs() - renewed_ns_.load(std::memory_order_acquire);
  if (age >= std::chrono::duration_cast<std::chrono::nanoseconds>(lease_).count()) {
    return Status::IOError(
        where_ + ": this mount's lease ran out " + std::to_string(age / 1000000) +
        " ms after it was last renewed (the cluster did not answer, or the process was "
        "stopped); it writes nothing until the lease is renewed");
  }
  return Status::OK();
}

Result<std::set<std::string>> RadosStoreLock::LiveIds() {
  std::list<librados::locker_t> live;
  int kind = 0;
  UPFS_RETURN_IF_ERROR(
      FromRados(ListLive(&live, &kind), std::string("listing the lockers of ") + kObject)
          .WithContext(where_));
  std::set<std::string> ids;
  for (const librados::locker_t& l : live) ids.insert(FieldOf(l.cookie, "nonce"));
  return ids;
}

Status RadosStoreLock::Fence(const std::string& description) {
  if (NamesDeadLocalProcess(description)) return Status::OK();
  const std::string address = FieldOf(description, "addr");
  if (address.empty()) {
    return Status::IOError("mount '" + description +
                           "' names no client address: it cannot be fenced");
  }
  // The address as `ceph osd blocklist` takes it: one entity address
  // ("v1:IP:PORT/NONCE" from a list such as "[v2:...,v1:...]").
  std::string one = address;
  if (!one.empty() && one.front() == '[') one = one.substr(1, one.find_first_of(",]") - 1);
  const int rc = conn_->rados().blocklist_add(one, kFenceSeconds);
  UPFS_RETURN_IF_ERROR(FromRados(rc, "blocklisting " + one)
                           .WithContext(where_ + ": fencing mount '" + description + "'"));
  // Every OSD refuses the fenced client once it has the new map; an
  // operation of ours carries that map's epoch, so an OSD first catches up.
  if (int waited = conn_->rados().wait_for_latest_osdmap(); waited < 0) {
    UPFS_RETURN_IF_ERROR(
        FromRados(waited, "waiting for the osdmap with the blocklist").WithContext(where_));
  }
  spdlog::warn("{}: fenced mount '{}' (its lease ran out): its client {} is blocklisted", where_,
               description, one);
  return Status::OK();
}

void RadosStoreLock::RenewLoop() {
  MutexLock lock(mu_);
  for (;;) {
    const auto renew_at = std::chrono::steady_clock::now() + lease_ / 3;
    while (!stopping_ && cv_.WaitUntil(mu_, renew_at))
      continue;  // woken early, not stopping: wait on
    if (stopping_) return;
    lock.Unlock();
    const int rc = Lock(true);
    if (rc == -ESHUTDOWN) {  // EBLOCKLISTED
      Status lost =
          Status::IOError(where_ +
                          ": this mount was fenced (its client is blocklisted): another mount "
                          "took over its sessions after its lease ran out; it writes nothing "
                          "more (restart it)");
      spdlog::error("{}", lost.ToString());
      {
        MutexLock l(lost_mu_);
        lost_ = std::move(lost);
      }
      fenced_.store(true, std::memory_order_release);
      return;
    }
    if (rc < 0) {
      spdlog::warn("{}: renewing the lease failed (tried again in {} s): {}", where_,
                   (lease_ / 3).count(), FromRados(rc, "lock").ToString());
    }
    lock.Lock();
  }
}

RadosStoreLock::~RadosStoreLock() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  if (renewer_.joinable()) renewer_.join();
  if (!fenced_.load()) {
    if (int rc = io_.unlock(kObject, kName, cookie_); rc < 0 && rc != -ENOENT) {
      spdlog::warn("{}: releasing the lease failed: {}", where_,
                   FromRados(rc, "unlock").ToString());
    }
  }
}

}  // namespace upfs::store
