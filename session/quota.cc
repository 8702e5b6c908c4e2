#include "session/quota.h"

#include <algorithm>
#include <vector>

#include <spdlog/spdlog.h>

namespace upfs::session {

namespace {

bool Refused(const Status& st) { return st.code() == Status::Code::kQuotaExceeded; }

}  // namespace

uint64_t QuotaLedger::GrantStep() const {
  return std::clamp<uint64_t>(quota_bytes_ / 16, uint64_t{64} << 10, uint64_t{64} << 20);
}

Status QuotaLedger::Regrant(uint32_t uid, store::QuotaGrant need, store::QuotaGrant want,
                            bool force) {
  store::QuotaGrant limit;
  if (!force) limit = {quota_bytes_, max_sessions_};
  store::QuotaGrant granted;
  UPFS_RETURN_IF_ERROR(store_->SetQuotaGrant(uid, need, want, limit, &granted));
  MutexLock lock(mu_);
  usage_[uid].granted = granted;
  return Status::OK();
}

Status QuotaLedger::ReserveBytes(uint32_t uid, uint64_t bytes) { return Take(uid, bytes, 0); }

void QuotaLedger::ReleaseBytes(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return;
  MutexLock lock(mu_);
  Usage& u = usage_[uid];
  u.bytes -= std::min(u.bytes, bytes);
}

Status QuotaLedger::AddSession(uint32_t uid) { return Take(uid, 0, 1); }

Status QuotaLedger::Refusal(uint32_t uid, uint64_t bytes, const Usage& u,
                            const std::string& others) {
  ++refusals_;
  const std::string who = "uid " + std::to_string(uid);
  const std::string here = others.empty() ? "" : " on this mount";
  if (bytes > 0) {
    return Status::QuotaExceeded(who + " holds " + std::to_string(u.bytes) +
                                 " bytes in open sessions" + here + "; " + std::to_string(bytes) +
                                 " more would pass its quota of " + std::to_string(quota_bytes_) +
                                 " bytes (-o quota)" + (others.empty() ? "" : ": " + others));
  }
  return Status::QuotaExceeded(
      who + " has " + std::to_string(u.sessions) + " open sessions" + here +
      (others.empty() ? ", " : ", and " + others + ": one more would pass ") +
      "its limit (-o max_sessions=" + std::to_string(max_sessions_) + ")");
}

Status QuotaLedger::Take(uint32_t uid, uint64_t bytes, uint64_t sessions) {
  if (!HasLimits()) return Status::OK();
  const bool limit_bytes = LimitsBytes(uid) && bytes > 0;
  const bool limit_sessions = LimitsSessions(uid) && sessions > 0;
  for (;;) {
    {
      MutexLock lock(mu_);
      Usage& u = usage_[uid];
      if ((limit_bytes && u.bytes + bytes > quota_bytes_) ||
          (limit_sessions && u.sessions + sessions > max_sessions_)) {
        return Refusal(uid, bytes, u, "");
      }
      if (store_ == nullptr || ((!limit_bytes || u.bytes + bytes <= u.granted.bytes) &&
                                (!limit_sessions || u.sessions + sessions <= u.granted.sessions))) {
        u.bytes += bytes;
        u.sessions += sessions;
        return Status::OK();
      }
    }
    // This mount's share is too small: a larger one from the store (bytes
    // one step beyond what this needs), never smaller in anything else.
    MutexLock grant(grant_mu_);
    store::QuotaGrant need, want;
    Usage before;
    {
      MutexLock lock(mu_);
      const Usage& u = usage_[uid];
      if ((!limit_bytes || u.bytes + bytes <= u.granted.bytes) &&
          (!limit_sessions || u.sessions + sessions <= u.granted.sessions)) {
        continue;  // grown meanwhile
      }
      before = u;
      if (LimitsBytes(uid)) {
        need.bytes = u.bytes + bytes;
        want.bytes = limit_bytes ? std::min(quota_bytes_, need.bytes + GrantStep())
                                 : std::max(need.bytes, u.granted.bytes);
      }
      if (LimitsSessions(uid)) {
        need.sessions = u.sessions + sessions;
        want.sessions = std::max(need.sessions, u.granted.sessions);
      }
    }
    Status st = Regrant(uid, need, want, /*force=*/false);
    if (Refused(st)) {
      MutexLock lock(mu_);
      return Refusal(uid, bytes, before, st.message());
    }
    UPFS_RETURN_IF_ERROR(st.WithContext("uid " + std::to_string(uid) +
                                        ": asking the store for a larger share of its limits"));
  }
}

void QuotaLedger::Settle(uint32_t uid, bool shrink) {
  if (store_ == nullptr || !HasLimits() || (!LimitsBytes(uid) && !LimitsSessions(uid))) return;
  MutexLock grant(grant_mu_);
  store::QuotaGrant target;
  {
    MutexLock lock(mu_);
    auto it = usage_.find(uid);
    if (it == usage_.end()) return;
    const Usage& u = it->second;
    const store::QuotaGrant used = {LimitsBytes(uid) ? u.bytes : 0,
                                    LimitsSessions(uid) ? u.sessions : 0};
    if (shrink) {
      if (used.bytes >= u.granted.bytes && used.sessions >= u.granted.sessions) return;
      target = {std::min(used.bytes, u.granted.bytes), std::min(used.sessions, u.granted.sessions)};
    } else {
      if (used.bytes <= u.granted.bytes && used.sessions <= u.granted.sessions) return;
      target = {std::max(used.bytes, u.granted.bytes), std::max(used.sessions, u.granted.sessions)};
    }
  }
  if (Status st = Regrant(uid, target, target, /*force=*/true); !st.ok()) {
    spdlog::warn("uid {}: recording this mount's share of the per-user limits failed: {}", uid,
                 st.ToString());
    return;
  }
  MutexLock lock(mu_);
  auto it = usage_.find(uid);
  if (it != usage_.end() && it->second.sessions == 0 && it->second.bytes == 0 &&
      it->second.granted.bytes == 0 && it->second.granted.sessions == 0) {
    usage_.erase(it);
  }
}

void QuotaLedger::CountSession(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return;
  {
    MutexLock lock(mu_);
    Usage& u = usage_[uid];
    ++u.sessions;
    u.bytes += bytes;
  }
  Settle(uid, /*shrink=*/false);
}

void QuotaLedger::RemoveSession(uint32_t uid, uint64_t bytes) {
  if (!HasLimits()) return;
  {
    MutexLock lock(mu_);
    Usage& u = usage_[uid];
    u.sessions -= std::min<uint64_t>(u.sessions, 1);
    u.bytes -= std::min(u.bytes, bytes);
    if (u.sessions == 0 && u.bytes == 0 && u.granted.bytes == 0 && u.granted.sessions == 0)
      usage_.erase(uid);
  }
}

void QuotaLedger::GiveBack(uint32_t uid) { Settle(uid, /*shrink=*/true); }

void QuotaLedger::MoveSession(uint32_t from, uint32_t to, uint64_t bytes) {
  if (!HasLimits() || from == to) return;
  {
    MutexLock lock(mu_);
    Usage& f = usage_[from];
    f.sessions -= std::min<uint64_t>(f.sessions, 1);
    f.bytes -= std::min(f.bytes, bytes);
    Usage& t = usage_[to];
    ++t.sessions;
    t.bytes += bytes;
  }
}

void QuotaLedger::Resettle(uint32_t from, uint32_t to) {
  if (from == to) return;
  Settle(from, /*shrink=*/true);
  Settle(to, /*shrink=*/false);
}

void QuotaLedger::Trim() {
  if (store_ == nullptr || !HasLimits()) return;
  std::vector<uint32_t> uids;
  {
    MutexLock lock(mu_);
    for (const auto& [uid, u] : usage_) uids.push_back(uid);
  }
  for (uint32_t uid : uids) Settle(uid, /*shrink=*/true);
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
