// Engine::Open: the engine over a store, with every open session (nodes,
// extents, lengths) recovered from it; and, on a store several mounts
// share, the sessions other mounts hold (listed, taken over when their
// holder's lease ran out).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

Status Engine::Impl::LoadNodes(Session& s, bool index) {
  std::vector<NodeRecord> nodes;
  UPFS_RETURN_IF_ERROR(store->ListNodes(s.id(), &nodes));
  uint64_t received_total = 0;
  for (NodeRecord& nr : nodes) {
    Node n;
    n.id = nr.id;
    n.parent = nr.parent;
    n.name = std::move(nr.name);
    n.is_dir = nr.is_dir;
    n.mode = nr.mode;
    n.uid = nr.uid;
    n.gid = nr.gid;
    n.atime_ns = nr.atime_ns;
    n.dir_mtime_ns = nr.mtime_ns;
    n.dir_ctime_ns = nr.ctime_ns;
    n.xattrs = std::move(nr.xattrs);
    if (!n.is_dir) {
      n.file = std::make_shared<FileState>(store.get(), n.id);
      MutexLock file_lock(n.file->mu);  // uncontended: no other thread has the file yet
      Result<ExtentMap> stored = n.file->StoredRanges();
      if (!stored.ok())
        return stored.status().WithContext("recovering session " + Quote(s.record.name));
      n.file->received = std::move(*stored);
      n.file->length = std::max(nr.length, n.file->received.End());
      n.file->mtime_ns = nr.mtime_ns;
      n.file->ctime_ns = nr.ctime_ns;
      received_total += n.file->received.BytesReceived();
      // The hash is rebuilt from the store when finish needs it.
      if (n.file->length.load() > 0) n.file->hash.Invalidate();
    }
    s.nodes.emplace(n.id, std::move(n));
  }
  for (auto& [id, n] : s.nodes) {
    auto dir = s.DirChildren(n.parent);
    if (!dir.ok()) {
      spdlog::error("recovering session {}: node {} ({}) has no parent {}; left out",
                    Quote(s.record.name), id, Quote(n.name), n.parent);
      continue;
    }
    (*dir)->emplace(n.name, id);
    if (n.is_dir) ++s.SubdirsOf(n.parent);
  }
  if (!index) return Status::OK();
  for (const auto& [id, n] : s.nodes) IndexAdd(id, s.shared_from_this());
  // Held here from now on: its owner's quota counts it.
  s.held_bytes = received_total;
  if (!s.counted) quota.CountSession(s.record.uid, received_total);
  s.counted = true;
  spdlog::info("recovered session {}: {} nodes, {} bytes received", Quote(s.record.name),
               s.nodes.size(), received_total);
  return Status::OK();
}

Result<std::shared_ptr<Session>> Engine::Impl::AddSession(SessionRecord record,
                                                          const std::string& holder) {
  auto s = NewSession();
  MutexLock lock(s->mu);  // uncontended: no other thread has the session yet
  s->record = std::move(record);
  s->last_activity_ns = Now();  // the idle timer restarts at mount (or takeover)
  s->holder = holder;
  if (holder.empty()) UPFS_RETURN_IF_ERROR(LoadNodes(*s));
  IndexAdd(s->id(), s);
  IndexAdd(s->id() + kFinishOffset, s);
  IndexAdd(s->id() + kStatusOffset, s);
  sessions[s->record.name] = s;
  return s;
}

Status Engine::Impl::TakeOver(Session& s, bool quiet) {
  const std::string from = s.holder;
  Status st = store->TakeOver(s.id(), from);
  if (!st.ok()) {
    const std::string why = "session " + Quote(s.record.name) + " is held by another mount (" +
                            store->DescribeMount(from) +
                            "): it takes the session's writes and its finish";
    if (st.IsBusy()) {
      if (!quiet) spdlog::warn("{}", why);
      return Status::Busy(why + "; this mount takes it over once that mount's lease runs out");
    }
    return st.WithContext("taking session " + Quote(s.record.name) + " over");
  }
  // The holder's nodes as the store has them now (it wrote nothing since
  // its lease ran out: it is fenced).
  SessionRecord fresh;
  UPFS_RETURN_IF_ERROR(store->GetSession(s.record.name, &fresh));
  s.record = std::move(fresh);
  s.holder.clear();
  Status loaded = LoadNodes(s);
  if (!loaded.ok()) {
    s.nodes.clear();
    s.children.clear();
    s.root_subdirs = 0;
    s.holder = store->MountId();  // held here, but not served: a later operation loads again
    return loaded;
  }
  s.last_activity_ns = Now();
  spdlog::warn("session {} taken over from mount {}, whose lease ran out", Quote(s.record.name),
               store->DescribeMount(from));
  return Status::OK();
}

void Engine::Impl::ForgetForeign(const std::shared_ptr<Session>& s) {
  {
    MutexLock lock(s->mu);
    s->state = SessionState::kGone;
  }
  auto it = sessions.find(s->name());
  if (it != sessions.end() && it->second == s) sessions.erase(it);
  IndexRemove(s->id());
  IndexRemove(s->id() + kFinishOffset);
  IndexRemove(s->id() + kStatusOffset);
  sessions_dir_ns = Now();
}

std::shared_ptr<Session> Engine::Impl::ServedSessionOf(uint64_t id) {
  auto s = SessionOf(id);
  if (!s || !Shared()) return s;
  std::string name;
  uint64_t session_id;
  {
    MutexLock lock(s->mu);
    if (s->holder.empty()) return s;
    name = s->record.name;
    session_id = s->id();
  }
  SessionRecord r;
  Status st = store->GetSession(name, &r);
  if ((st.ok() && r.id == session_id) || (!st.ok() && !st.IsNotFound())) return s;
  // Committed (its ids now the asset's) or aborted by its holder.
  MutexLock table(table_mu);
  ForgetForeign(s);
  return nullptr;
}

Status Engine::Impl::RefreshSessions() {
  if (!Shared()) return Status::OK();
  std::vector<SessionRecord> records;
  UPFS_RETURN_IF_ERROR(store->ListSessions(&records));
  std::map<std::string, SessionRecord, std::less<>> stored;
  for (SessionRecord& r : records) stored.emplace(r.name, std::move(r));
  std::vector<std::shared_ptr<Session>> gone;
  for (const auto& [name, s] : sessions) {
    MutexLock lock(s->mu);
    if (s->holder.empty()) continue;  // ours: this mount knows
    auto it = stored.find(name);
    if (it == stored.end() || it->second.id != s->id()) gone.push_back(s);
  }
  for (const auto& s : gone) ForgetForeign(s);
  for (auto& [name, r] : stored) {
    if (sessions.count(name)) continue;
    std::string holder;
    UPFS_RETURN_IF_ERROR(store->GetHolder(r.id, &holder));
    // Ended here meanwhile; or begun by an older upfs, not yet claimed.
    if (holder == store->MountId() || holder.empty()) continue;
    UPFS_RETURN_IF_ERROR(AddSession(std::move(r), holder).status());
  }
  return Status::OK();
}

Result<std::shared_ptr<Session>> Engine::Impl::FetchSession(std::string_view name) {
  auto it = sessions.find(name);
  std::shared_ptr<Session> known = it == sessions.end() ? nullptr : it->second;
  if (!Shared()) return known;
  if (known) {
    MutexLock lock(known->mu);
    if (known->holder.empty()) return known;
  }
  // Another mount's (or none we know of): as the store has it now.
  SessionRecord r;
  Status st = store->GetSession(name, &r);
  if (!st.ok() && !st.IsNotFound()) return st;
  if (known && (st.IsNotFound() || r.id != known->id())) {
    ForgetForeign(known);
    known = nullptr;
  }
  if (known || st.IsNotFound()) return known;
  std::string holder;
  UPFS_RETURN_IF_ERROR(store->GetHolder(r.id, &holder));
  if (holder == store->MountId() || holder.empty())
    return std::shared_ptr<Session>();  // as in RefreshSessions
  return AddSession(std::move(r), holder);
}

Result<std::unique_ptr<Engine>> Engine::Open(std::unique_ptr<store::Store> store, Options options) {
  auto impl = std::make_unique<Impl>(std::move(store), std::move(options));
  std::vector<SessionRecord> records;
  UPFS_RETURN_IF_ERROR(impl->store->ListSessions(&records));
  {
    MutexLock table(impl->table_mu);
    for (SessionRecord& rec : records) {
      std::string holder;
      UPFS_RETURN_IF_ERROR(impl->store->GetHolder(rec.id, &holder));
      if (holder != impl->store->MountId()) {
        // Another mount's: ours now if its lease ran out (a restart after
        // a crash takes back what the crashed process held).
        Status st = impl->store->TakeOver(rec.id, holder);
        if (st.IsBusy()) {
          spdlog::info("session {} is held by mount {}", Quote(rec.name),
                       impl->store->DescribeMount(holder));
          UPFS_RETURN_IF_ERROR(impl->AddSession(std::move(rec), holder).status());
          continue;
        }
        UPFS_RETURN_IF_ERROR(st.WithContext("taking session " + Quote(rec.name) + " over"));
      }
      UPFS_RETURN_IF_ERROR(impl->AddSession(std::move(rec), "").status());
    }
  }
  // Files of removed assets kept for readers that are gone now.
  std::vector<uint64_t> removed;
  UPFS_RETURN_IF_ERROR(impl->store->ListRemovedBlobs(&removed));
  if (!removed.empty()) spdlog::info("freeing {} file(s) of removed assets", removed.size());
  impl->FreeRemoved(removed);
  std::vector<AssetRecord> assets;
  UPFS_RETURN_IF_ERROR(impl->store->ListAssets(&assets));
  impl->asset_count = assets.size();
  impl->sessions_dir_ns = impl->assets_dir_ns = impl->mount_time_ns;
  if (!impl->options.post_commit.empty()) {
    PostCommitSettings hook;
    hook.program = impl->options.post_commit;
    hook.mountpoint = impl->options.mountpoint;
    hook.timeout_ns = impl->options.hook_timeout_ns;
    hook.retry_initial_ns = impl->options.post_commit_retry_ns;
    impl->notifier = std::make_unique<CommitNotifier>(impl->store.get(), std::move(hook));
  } else {
    std::vector<std::string> waiting;
    if (impl->store->ListNotices(&waiting).ok() && !waiting.empty()) {
      spdlog::warn(
          "{} commit(s) wait for a post_commit program, and none is set (-o post_commit): kept for "
          "a "
          "later mount that sets one",
          waiting.size());
    }
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Status Engine::StartPostCommit() {
  if (!impl_->notifier) return Status::OK();
  return impl_->notifier->Start().WithContext("post_commit: listing the commits not yet delivered");
}

}  // namespace upfs::session
