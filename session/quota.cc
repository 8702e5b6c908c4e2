#include "session/quota.h"

namespace upfs::session {

Status QuotaLedger::ReserveBytes(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return Status::OK();
  MutexLock lock(mu_);
  Usage& u = usage_[uid];
  if (quota_bytes_ != 0 && uid != 0 && bytes > 0 && u.bytes + bytes > quota_bytes_) {
    ++refusals_;
    return Status::QuotaExceeded("uid " + std::to_string(uid) + " holds " +
                                 std::to_string(u.bytes) + " bytes in open sessions; " +
                                 std::to_string(bytes) + " more would pass its quota of " +
                                 std::to_string(quota_bytes_) + " bytes (-o quota)");
  }
  u.bytes += bytes;
  return Status::OK();
}

void QuotaLedger::ReleaseBytes(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return;
  MutexLock lock(mu_);
  Usage& u = usage_[uid];
  u.bytes -= std::min(u.bytes, bytes);
}

Status QuotaLedger::AddSession(uint32_t uid) {
  if (!HasLimits()) return Status::OK();
  MutexLock lock(mu_);
  Usage& u = usage_[uid];
  if (max_sessions_ != 0 && uid != 0 && u.sessions >= max_sessions_) {
    ++refusals_;
    return Status::QuotaExceeded(
        "uid " + std::to_string(uid) + " has " + std::to_string(u.sessions) +
        " open sessions, its limit (-o max_sessions=" + std::to_string(max_sessions_) + ")");
  }
  ++u.sessions;
  return Status::OK();
}

void QuotaLedger::CountSession(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return;
  MutexLock lock(mu_);
  Usage& u = usage_[uid];
  ++u.sessions;
  u.bytes += bytes;
}

void QuotaLedger::RemoveSession(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return;
  MutexLock lock(mu_);
  Usage& u = usage_[uid];
  u.sessions -= std::min<uint64_t>(u.sessions, 1);
  u.bytes -= std::min(u.bytes, bytes);
  if (u.sessions == 0 && u.bytes == 0) usage_.erase(uid);
}

void QuotaLedger::MoveSession(uint32_t from, uint32_t to, uint64_t bytes) {
  if (!HasLimits() || from == to) return;
  MutexLock lock(mu_);
  Usage& f = usage_[from];
  f.sessions -= std::min<uint64_t>(f.sessions, 1);
  f.bytes -= std::min(f.bytes, bytes);
  Usage& t = usage_[to];
  ++t.sessions;
  t.bytes += bytes;
}

QuotaLedger::Usage QuotaLedger::Of(uint32_t uid) const {
  MutexLock lock(mu_);
  auto it = usage_.find(uid);
  return it == usage_.end() ? Usage{} : it->second;
}

std::string QuotaLedger::Describe(uint32_t uid) const {
  const Usage u = Of(uid);
  std::string text = "uid " + std::to_string(uid) + " holds " + std::to_string(u.bytes);
  text += quota_bytes_ != 0 && uid != 0 ? " of " + std::to_string(quota_bytes_) + " bytes"
                                        : " bytes (no limit)";
  text += ", " + std::to_string(u.sessions);
  text += max_sessions_ != 0 && uid != 0 ? " of " + std::to_string(max_sessions_) + " sessions"
                                         : " sessions (no limit)";
  return text;
}

uint64_t QuotaLedger::refusals() const {
  MutexLock lock(mu_);
  return refusals_;
}

}  // namespace upfs::session
