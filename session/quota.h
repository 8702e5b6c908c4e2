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
// Several mounts of one store (a `store` given: a RADOS store) count each
// its own sessions, and the limits hold for all of them together through
// grants (store::Store::SetQuotaGrant): a mount holds for each limited uid
// a grant of bytes and sessions, its share of the limits, and asks the
// store for more (bytes in steps of GrantStep) only when its sessions
// would pass it; the store gives it only what the other live mounts'
// grants leave. A session's end (commit, abort, expiry) gives its share
// back at once, unused steps at the next Trim (the sweep). So a uid's
// sessions on all mounts together never pass -o quota or -o max_sessions,
// and a write may be refused by up to the unused steps of other mounts
// before the limit. Sessions counted without asking (recovered, taken
// over) are granted whatever they hold.
//
// Thread safety: every method may be called from any thread. mu_ is a
// leaf; grant_mu_ (taken before it, never while it is held) serializes
// the calls to the store.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/mutex.h"
#include "base/status.h"
#include "store/store.h"

namespace upfs::session {

class QuotaLedger {
 public:
  // 0: no limit. `store`: the store several mounts share, or nullptr.
  QuotaLedger(uint64_t quota_bytes, uint64_t max_sessions, store::Store* store = nullptr)
      : quota_bytes_(quota_bytes), max_sessions_(max_sessions), store_(store) {}

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
  // A session ended: its place and its bytes are given back (to the other
  // mounts, too, by GiveBack).
  void RemoveSession(uint32_t uid, uint64_t bytes);
  // Several mounts: gives back the share of `uid`'s limits its sessions
  // here no longer need (a store operation: call it without the engine's
  // locks held).
  void GiveBack(uint32_t uid);
  // A session of `bytes` changed owner: counted for `to` from now on,
  // never refused (only root gives sessions away). No store operation:
  // call Resettle(from, to) next, without the engine's locks held.
  void MoveSession(uint32_t from, uint32_t to, uint64_t bytes);
  // Several mounts: after MoveSession, `from` gives back the share it no
  // longer needs and `to`'s grant covers what it now holds (store
  // operations).
  void Resettle(uint32_t from, uint32_t to);
  // Several mounts: gives back the grants' unused steps (the sweep).
  void Trim();
  // The bytes a grant grows by beyond what a write needs: a sixteenth of
  // -o quota, at least 64 KiB and at most 64 MiB (one store operation per
  // that many bytes written, at most that many refused early elsewhere).
  uint64_t GrantStep() const;

  struct Usage {
    uint64_t bytes = 0;
    uint64_t sessions = 0;
    store::QuotaGrant granted;  // several mounts: this mount's grant
  };
  Usage Of(uint32_t uid) const;
  // "quota: uid 1000 holds 5 of 100 bytes, 1 of 3 sessions", for .status.
  std::string Describe(uint32_t uid) const;

  // Refusals since the start (metrics).
  uint64_t refusals() const;

 private:
  bool LimitsBytes(uint32_t uid) const { return quota_bytes_ != 0 && uid != 0; }
  bool LimitsSessions(uint32_t uid) const { return max_sessions_ != 0 && uid != 0; }
  // Counts `bytes` and `sessions` more for `uid` (one of them 0), or
  // QuotaExceeded past a limit or this mount's share of it.
  Status Take(uint32_t uid, uint64_t bytes, uint64_t sessions);
  // The refusal of `bytes` (or, when 0, a session) more for `uid`, which
  // holds `u` here; `others`: what the store said of the other mounts.
  Status Refusal(uint32_t uid, uint64_t bytes, const Usage& u, const std::string& others)
      REQUIRES(mu_);
  // Several mounts: sets this mount's grant for `uid` (need, want: as
  // store::Store::SetQuotaGrant; `force`: within no limit). Takes mu_.
  Status Regrant(uint32_t uid, store::QuotaGrant need, store::QuotaGrant want, bool force)
      REQUIRES(grant_mu_);
  // Several mounts: the grant of `uid` as its usage now needs (its bytes
  // and sessions, forced), or given back down to them (shrinking).
  void Settle(uint32_t uid, bool shrink);

  const uint64_t quota_bytes_;
  const uint64_t max_sessions_;
  store::Store* const store_;
  Mutex grant_mu_ ACQUIRED_BEFORE(mu_);
  mutable Mutex mu_;
  std::unordered_map<uint32_t, Usage> usage_ GUARDED_BY(mu_);
  uint64_t refusals_ GUARDED_BY(mu_) = 0;
};

}  // namespace upfs::session
