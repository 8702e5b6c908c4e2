// QuotaLedger: what each uid holds in the open sessions this engine holds,
// against the per-user limits (-o quota, -o max_sessions;
// docs/configuration.md, "Per-user limits").
//
// A session's bytes are its files' received bytes (each byte once, however
// often it was rewritten), counted against the session's owner (the uid
// of sessions/NAME), whoever wrote them. Committed assets do not count; a
// commit, abort or expiry gives the session's bytes and its place back.
// uid 0 is exempt from both limits (counted, never refused). Nothing is
// stored: the ledger is rebuilt from the sessions' extent records at every
// start and takeover, so it survives restarts as exactly as they do.
//
// Without limits nothing is counted: every write would otherwise take the
// ledger's lock for nothing (Of then says 0).
//
// Thread safety: every method may be called from any thread; one mutex,
// a leaf (nothing else is locked while it is held).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/mutex.h"
#include "base/status.h"

namespace upfs::session {

class QuotaLedger {
 public:
  // 0: no limit.
  QuotaLedger(uint64_t quota_bytes, uint64_t max_sessions)
      : quota_bytes_(quota_bytes), max_sessions_(max_sessions) {}

  bool HasLimits() const { return quota_bytes_ != 0 || max_sessions_ != 0; }
  uint64_t quota_bytes() const { return quota_bytes_; }
  uint64_t max_sessions() const { return max_sessions_; }

  // Counts `bytes` more for `uid`, or QuotaExceeded (nothing counted)
  // when that would take it past -o quota. Atomic: racing writers of one
  // uid never pass the limit together.
  Status ReserveBytes(uint32_t uid, uint64_t bytes);
  void ReleaseBytes(uint32_t uid, uint64_t bytes);
  // One more open session for `uid`, or QuotaExceeded past -o max_sessions.
  Status AddSession(uint32_t uid);
  // A session (and its bytes) that exists already: recovered at start or
  // taken over. Never refused.
  void CountSession(uint32_t uid, uint64_t bytes);
  // A session ended: its place and its bytes are given back.
  void RemoveSession(uint32_t uid, uint64_t bytes);
  // A session of `bytes` changed owner.
  void MoveSession(uint32_t from, uint32_t to, uint64_t bytes);

  struct Usage {
    uint64_t bytes = 0;
    uint64_t sessions = 0;
  };
  Usage Of(uint32_t uid) const;
  // "quota: uid 1000 holds 5 of 100 bytes, 1 of 3 sessions", for .status.
  std::string Describe(uint32_t uid) const;

  // Refusals since the start (metrics).
  uint64_t refusals() const;

 private:
  const uint64_t quota_bytes_;
  const uint64_t max_sessions_;
  mutable Mutex mu_;
  std::unordered_map<uint32_t, Usage> usage_ GUARDED_BY(mu_);
  uint64_t refusals_ GUARDED_BY(mu_) = 0;
};

}  // namespace upfs::session
