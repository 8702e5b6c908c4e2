// Engine: dropping sessions with all their data, when idle past the TTL
// (ExpireIdle) or aborted by rmdir.
#include <mutex>

#include <spdlog/spdlog.h>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

// Deletes a session and all its data in one batch; the caller has marked
// it kGone. On failure the caller reopens it.
// GCC 12 reports a false -Wmaybe-uninitialized in std::vector<Batch::Op>
// growth inlined here (a NodeRecord alternative that is never built).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
Status Engine::Impl::DropSession(Session& s, bool sync) {
  Batch batch;
  std::vector<uint64_t> unlinked_ids;
  {
    MutexLock lock(s.mu);
    for (const auto& [id, n] : s.nodes) {
      batch.DeleteNodeRecord(s.id(), id);
      if (n.file) batch.DeleteBlobData(id);
    }
    batch.Delete(s.record);
    for (const auto& [id, n] : s.unlinked) unlinked_ids.push_back(id);
  }
  for (uint64_t id : unlinked_ids) batch.DeleteBlobData(id);
  UPFS_RETURN_IF_ERROR(store->Apply(batch, sync));
  std::vector<uint64_t> ids;
  std::string name;
  uint32_t owner = 0;
  {
    MutexLock lock(s.mu);
    owner = s.record.uid;
    for (auto& [id, n] : s.nodes) {
      ids.push_back(id);
      if (n.file) n.file->removed = true;
    }
    for (auto& [id, n] : s.unlinked) {
      ids.push_back(id);
      n.file->removed = true;
    }
    s.unlinked.clear();
    name = s.record.name;
    Uncount(s);
  }
  quota.GiveBack(owner);
  {
    MutexLock table(table_mu);
    auto it = sessions.find(name);
    if (it != sessions.end() && it->second.get() == &s) sessions.erase(it);
  }
  sessions_dir_ns = Now();
  for (uint64_t id : ids) IndexRemove(id);
  IndexRemove(s.id());
  IndexRemove(s.id() + kFinishOffset);
  IndexRemove(s.id() + kStatusOffset);
  return Status::OK();
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

std::vector<std::string> Engine::ExpireIdle() {
  Impl& m = *impl_;
  int64_t now = m.Now();
  std::vector<std::shared_ptr<Session>> doomed, foreign;
  {
    MutexLock table(m.table_mu);
    if (Status st = m.RefreshSessions(); !st.ok())
      spdlog::warn("listing the store's sessions: {}", st.ToString());
    for (const auto& [name, s] : m.sessions) {
      MutexLock lock(s->mu);
      if (!s->holder.empty()) {
        foreign.push_back(s);
        continue;
      }
      // Never a session in use: open handles, writes in flight, a finish
      // running, or activity within the TTL.
      if (s->state != SessionState::kOpen || s->open_handles > 0 || s->writes_in_flight > 0)
        continue;
      if (now - s->last_activity_ns < m.options.ttl_ns) continue;
      s->state = SessionState::kGone;
      doomed.push_back(s);
    }
  }
  // Other mounts' sessions: those whose holder's lease ran out are taken
  // over here (their idle time starts now), so that an abandoned session
  // of a mount that died expires too, once, by one mount. Outside the
  // table's lock: a takeover may read a whole session back.
  for (const auto& s : foreign) {
    MutexLock lock(s->mu);
    // A failure (Busy while the holder's lease is live) leaves it that mount's.
    if (s->state == SessionState::kOpen && !s->holder.empty())
      m.TakeOver(*s, /*quiet=*/true).IgnoreError();
  }
  // Files of removed assets that no live mount reads any more (their
  // readers' mounts died, or a removal or a last close was interrupted):
  // freed here, so that their bytes do not wait for the next mount to
  // start.
  if (!m.store->MountId().empty()) {
    m.DropIdleReaderRecords();
    std::vector<uint64_t> orphaned;
    if (Status st = m.store->ListRemovedBlobs(&orphaned); !st.ok()) {
      spdlog::warn("listing files of removed assets: {}", st.ToString());
    } else if (!orphaned.empty()) {
      spdlog::info("freeing {} file(s) of removed assets that no live mount reads",
                   orphaned.size());
      m.FreeRemoved(orphaned);
    }
    // Unused steps of this mount's shares of the per-user limits.
    m.quota.Trim();
    // Commit notices of mounts that died before delivering them.
    if (m.notifier) {
      if (Status st = m.notifier->TakeOver(); !st.ok())
        spdlog::warn("post_commit: taking over the notices of mounts that are gone: {}",
                     st.ToString());
    }
  }
  std::vector<std::string> expired;
  for (const auto& s : doomed) {
    std::string name;
    {
      MutexLock lock(s->mu);
      name = s->record.name;
    }
    Status st = m.DropSession(*s, /*sync=*/false);
    if (!st.ok()) {
      MutexLock lock(s->mu);
      s->state = SessionState::kOpen;
      spdlog::error("expiring session {} failed, kept: {}", Quote(name), st.ToString());
      continue;
    }
    spdlog::info("session {} expired after {} s idle", Quote(name), m.options.ttl_ns / 1000000000);
    expired.push_back(std::move(name));
  }
  // No compaction here: the store compacts on its own once enough freed
  // records accumulate (KvStore's kCompactAfterFreedRecords), whoever freed
  // them. A compaction after every sweep that expired anything ran every
  // few seconds under a steady stream of abandoned sessions, and each one
  // rewrote LevelDB tables spanning the whole index: in the soak the
  // daemon's CPU per round grew with the store's age (docs/performance.md).
  return expired;
}

}  // namespace upfs::session
