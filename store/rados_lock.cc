#include "store/rados_lock.h"

#include <sys/time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <list>
#include <random>
#include <sstream>

namespace upfs::store {

namespace {

constexpr const char* kHolderXattr = "holder";

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

// "key=value" of a cookie, or "".
std::string FieldOf(const std::string& cookie, const std::string& key) {
  std::istringstream words(cookie);
  std::string word;
  while (words >> word) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return "";
}

}  // namespace

std::string RadosStoreLock::CookieOfThisProcess(const std::string& purpose) {
  std::random_device rd;
  char nonce[17];
  std::snprintf(nonce, sizeof(nonce), "%08x%08x", rd(), rd());
  const std::string pid = std::to_string(::getpid());
  return "upfs-" + purpose + " host=" + HostName() + " boot=" + BootId() + " pid=" + pid +
         " start=" + StartTimeOf(pid) + " nonce=" + nonce;
}

bool RadosStoreLock::NamesDeadLocalProcess(const std::string& cookie) {
  const std::string pid = FieldOf(cookie, "pid");
  const std::string start = FieldOf(cookie, "start");
  const std::string boot = FieldOf(cookie, "boot");
  if (boot.empty() || boot == "unknown" || boot != BootId() || pid.empty() || start.empty()) return false;
  if (pid.find_first_not_of("0123456789") != std::string::npos) return false;
  // Gone, or the PID now names a process started at another time.
  return StartTimeOf(pid) != start;
}

RadosStoreLock::RadosStoreLock(std::shared_ptr<RadosConnection> conn, librados::IoCtx io, std::string where,
                               std::string cookie)
    : conn_(std::move(conn)), io_(std::move(io)), where_(std::move(where)), cookie_(std::move(cookie)) {}

int RadosStoreLock::Lock(bool renew) {
  timeval lease{static_cast<time_t>(kLease.count()), 0};
  return io_.lock_exclusive(kObject, kName, cookie_, "upfs: " + where_, &lease,
                            renew ? LIBRADOS_LOCK_FLAG_MAY_RENEW : 0);
}

Status RadosStoreLock::WriteHolder() {
  librados::bufferlist value;
  value.append(cookie_);
  return FromRados(io_.setxattr(kObject, kHolderXattr, value), std::string("writing the holder of ") + kObject);
}

Result<std::unique_ptr<RadosStoreLock>> RadosStoreLock::Acquire(std::shared_ptr<RadosConnection> conn,
                                                                const std::string& pool, const std::string& ns,
                                                                const std::string& purpose) {
  const std::string where = "rados pool " + pool + (ns.empty() ? "" : " namespace " + ns);
  auto io = conn->OpenPool(pool, ns);
  UPFS_RETURN_IF_ERROR(io.status().WithContext(where));
  std::unique_ptr<RadosStoreLock> lock(
      new RadosStoreLock(std::move(conn), std::move(io).value(), where, CookieOfThisProcess(purpose)));
  int rc = lock->Lock(false);
  if (rc == -EBUSY || rc == -EEXIST) {
    int exclusive = 0;
    std::string tag;
    std::list<librados::locker_t> lockers;
    int listed = lock->io_.list_lockers(kObject, kName, &exclusive, &tag, &lockers);
    std::string holder = "another process";
    if (listed >= 0 && lockers.empty()) {
      rc = lock->Lock(false);  // released meanwhile
    } else if (listed >= 0) {
      const librados::locker_t& l = lockers.front();
      holder = "'" + l.cookie + "' (" + l.client + " at " + l.address + ")";
      if (NamesDeadLocalProcess(l.cookie)) {
        spdlog::warn("{}: the process that held the store, {}, is gone: breaking its lock", where, holder);
        int broken = lock->io_.break_lock(kObject, kName, l.client, l.cookie);
        if (broken < 0 && broken != -ENOENT) {
          return FromRados(broken, "breaking the lock of " + std::string(kObject)).WithContext(where);
        }
        rc = lock->Lock(false);
      }
    }
    if (rc == -EBUSY || rc == -EEXIST) {
      return Status::Busy(where + " is in use by " + holder + "; one process at a time serves a store (stop it, " +
                          "or wait " + std::to_string(kLease.count()) + " s after it died on another host)");
    }
  }
  UPFS_RETURN_IF_ERROR(FromRados(rc, std::string("locking ") + kObject).WithContext(where));
  UPFS_RETURN_IF_ERROR(lock->WriteHolder().WithContext(where));
  lock->renewer_ = std::thread([l = lock.get()] { l->RenewLoop(); });
  return lock;
}

Status RadosStoreLock::Held() const {
  if (held_.load(std::memory_order_acquire)) return Status::OK();
  std::lock_guard lock(lost_mu_);
  return lost_;
}

void RadosStoreLock::RenewLoop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, kLease / 3, [&] { return stopping_; })) {
    lock.unlock();
    Status lost;
    if (int rc = Lock(true); rc == -EBUSY || rc == -EEXIST) {
      lost = Status::IOError(where_ + ": another process took the store's lock; this one no longer writes to it");
    } else if (rc < 0) {
      spdlog::warn("{}: renewing the store's lock failed (tried again in {} s): {}", where_, (kLease / 3).count(),
                   FromRados(rc, "lock").ToString());
    } else {
      // Held again; if someone else held it meanwhile, they wrote their
      // cookie, and this process's view of the store may be stale.
      librados::bufferlist value;
      const int got = io_.getxattr(kObject, kHolderXattr, value);
      if (got >= 0 && value.to_str() != cookie_) {
        lost = Status::IOError(where_ + ": '" + value.to_str() +
                               "' held the store while this process could not renew its lock; this one no " +
                               "longer writes to it");
        io_.unlock(kObject, kName, cookie_);
      }
    }
    if (!lost.ok()) {
      spdlog::error("{}", lost.ToString());
      {
        std::lock_guard l(lost_mu_);
        lost_ = std::move(lost);
      }
      held_.store(false, std::memory_order_release);
      return;
    }
    lock.lock();
  }
}

RadosStoreLock::~RadosStoreLock() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  if (held_.load()) {
    if (int rc = io_.unlock(kObject, kName, cookie_); rc < 0 && rc != -ENOENT) {
      spdlog::warn("{}: releasing the store's lock failed: {}", where_, FromRados(rc, "unlock").ToString());
    }
  }
}

}  // namespace upfs::store
