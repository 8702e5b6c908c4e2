// Engine: ids and attributes on both sides (open sessions and committed
// assets), lookup and readdir. The other parts of Engine are in the files
// engine_impl.h lists.
#include "session/engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <mutex>

#include "session/engine_impl.h"

namespace upfs::session {

bool IsDirectoryKind(NodeKind kind) {
  switch (kind) {
    case NodeKind::kRoot:
    case NodeKind::kSessionsDir:
    case NodeKind::kAssetsDir:
    case NodeKind::kSessionRoot:
    case NodeKind::kDir:
    case NodeKind::kAssetRoot:
    case NodeKind::kAssetDir:
      return true;
    case NodeKind::kFile:
    case NodeKind::kFinish:
    case NodeKind::kStatus:
    case NodeKind::kAssetFile:
      return false;
  }
  return false;
}

bool IsCommittedKind(NodeKind kind) {
  return kind == NodeKind::kAssetsDir || kind == NodeKind::kAssetRoot ||
         kind == NodeKind::kAssetDir || kind == NodeKind::kAssetFile;
}

namespace {

// A node's three times.
struct Times {
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  static Times All(int64_t ns) { return {ns, ns, ns}; }
  template <typename Record>
  static Times Of(const Record& r) {
    return {r.atime_ns, r.mtime_ns, r.ctime_ns};
  }
};

Attr BaseAttr(uint64_t id, NodeKind kind, uint32_t mode, uint32_t uid, uint32_t gid, Times t) {
  Attr a;
  a.id = id;
  a.kind = kind;
  a.mode = mode;
  a.uid = uid;
  a.gid = gid;
  a.atime_ns = t.atime_ns;
  a.mtime_ns = t.mtime_ns;
  a.ctime_ns = t.ctime_ns;
  return a;
}

// `subdirs`: the directories directly inside; the link count is 2 + that
// ("." and the entry in the parent, plus each subdirectory's ".."), as on
// ext4, so find(1)'s leaf optimisation and fts count right.
Attr DirAttr(uint64_t id, NodeKind kind, uint32_t mode, uint32_t uid, uint32_t gid, Times t,
             uint64_t subdirs) {
  Attr a = BaseAttr(id, kind, S_IFDIR | (mode & 07777), uid, gid, t);
  a.nlink = static_cast<uint32_t>(std::min<uint64_t>(2 + subdirs, UINT32_MAX));
  return a;
}

Attr FileAttr(uint64_t id, NodeKind kind, uint32_t mode, uint32_t uid, uint32_t gid, Times t,
              uint64_t size) {
  Attr a = BaseAttr(id, kind, S_IFREG | (mode & 07777), uid, gid, t);
  a.nlink = 1;
  a.size = size;
  return a;
}

// Committed directories written before the count was recorded have
// subdirs == kUnknownCount: the caller counts their entries instead.
Attr EntryAttr(const AssetEntry& e, uint64_t subdirs) {
  if (e.is_dir)
    return DirAttr(e.id, NodeKind::kAssetDir, e.mode, e.uid, e.gid, Times::Of(e), subdirs);
  return FileAttr(e.id, NodeKind::kAssetFile, e.mode, e.uid, e.gid, Times::Of(e), e.length);
}

Attr AssetRootAttr(const AssetRecord& r, uint64_t subdirs) {
  return DirAttr(r.root_id, NodeKind::kAssetRoot, r.mode, r.uid, r.gid, Times::Of(r), subdirs);
}

}  // namespace

// Kind of a session-side id.
Result<NodeKind> Engine::Impl::KindIn(Session& s, uint64_t id) {
  if (id == s.id()) return NodeKind::kSessionRoot;
  if (id == s.id() + kFinishOffset) return NodeKind::kFinish;
  if (id == s.id() + kStatusOffset) return NodeKind::kStatus;
  auto it = s.nodes.find(id);
  if (it == s.nodes.end()) {
    if (s.IsUnlinked(id)) return NodeKind::kFile;
    return Status::NotFound("id " + std::to_string(id) + " is gone");
  }
  return it->second.is_dir ? NodeKind::kDir : NodeKind::kFile;
}

// Attributes of a session-side id. (s.record, not a reference to it: the
// lock analysis does not follow references.)
Result<Attr> Engine::Impl::AttrIn(Session& s, uint64_t id) {
  if (id == s.record.id) {
    return DirAttr(s.record.id, NodeKind::kSessionRoot, s.record.mode, s.record.uid, s.record.gid,
                   Times::Of(s.record), s.root_subdirs);
  }
  if (id == s.record.id + kFinishOffset) {
    return FileAttr(id, NodeKind::kFinish, 0200, s.record.uid, s.record.gid,
                    Times::All(s.record.mtime_ns), 0);
  }
  if (id == s.record.id + kStatusOffset) {
    return FileAttr(id, NodeKind::kStatus, 0444, s.record.uid, s.record.gid,
                    Times::All(s.last_activity_ns), 0);
  }
  auto it = s.nodes.find(id);
  const bool unlinked = it == s.nodes.end();
  if (unlinked) {
    it = s.unlinked.find(id);
    if (it == s.unlinked.end()) return Status::NotFound("id " + std::to_string(id) + " is gone");
  }
  const Node& n = it->second;
  const Times t{n.atime_ns, n.mtime_ns(), n.ctime_ns()};
  if (n.is_dir) return DirAttr(n.id, NodeKind::kDir, n.mode, n.uid, n.gid, t, n.subdirs);
  Attr a = FileAttr(n.id, NodeKind::kFile, n.mode, n.uid, n.gid, t, n.file->length.load());
  // fstat(2) of an unlinked file that is still open: no links left.
  if (unlinked) a.nlink = 0;
  return a;
}

// The subdirectory count of a committed directory: as recorded at
// commit, or counted for a record from before the count was kept.
uint64_t Engine::Impl::CommittedSubdirs(std::string_view asset, std::string_view dir,
                                        uint64_t recorded) {
  if (recorded != store::kUnknownCount) return recorded;
  std::vector<AssetEntry> entries;
  if (!store->ListAssetDir(asset, dir, &entries).ok()) return 0;
  return static_cast<uint64_t>(
      std::count_if(entries.begin(), entries.end(), [](const AssetEntry& e) { return e.is_dir; }));
}
Attr Engine::Impl::RootAttrOf(const AssetRecord& r) {
  return AssetRootAttr(r, CommittedSubdirs(r.name, "", r.subdirs));
}
Attr Engine::Impl::EntryAttrOf(const AssetEntry& e) {
  return EntryAttr(e, e.is_dir ? CommittedSubdirs(e.asset, e.Path(), e.subdirs) : 0);
}

Result<AssetLocation> Engine::Impl::Locate(uint64_t id) {
  AssetLocation loc;
  Status s = store->LocateId(id, &loc);
  if (s.IsNotFound()) return Status::NotFound("no object with id " + std::to_string(id));
  if (!s.ok()) return s;
  return loc;
}

Result<Attr> Engine::Impl::AssetAttr(const AssetLocation& loc) {
  if (loc.is_root()) {
    AssetRecord r;
    UPFS_RETURN_IF_ERROR(store->GetAsset(loc.asset, &r));
    return RootAttrOf(r);
  }
  AssetEntry e;
  UPFS_RETURN_IF_ERROR(store->GetAssetEntry(loc.asset, loc.dir, loc.name, &e));
  return EntryAttrOf(e);
}

Result<AssetEntry> Engine::Impl::AssetEntryOf(uint64_t id) {
  UPFS_ASSIGN_OR_RETURN(auto loc, Locate(id));
  if (loc.is_root()) return Status::IsDirectory("asset root");
  AssetEntry e;
  UPFS_RETURN_IF_ERROR(store->GetAssetEntry(loc.asset, loc.dir, loc.name, &e));
  return e;
}

Result<Attr> Engine::Impl::GetAttr(uint64_t id) {
  switch (id) {
    case kRootId:
      return DirAttr(kRootId, NodeKind::kRoot, 0755, 0, 0, Times::All(mount_time_ns), 2);
    // Both sides are sticky and world-writable, like /tmp: anyone may
    // begin a session, only its owner may remove, rename or commit it.
    case kSessionsId: {
      uint64_t open_sessions;
      {
        MutexLock lock(table_mu);
        open_sessions = sessions.size();
      }
      return DirAttr(kSessionsId, NodeKind::kSessionsDir, 01777, 0, 0,
                     Times::All(sessions_dir_ns.load()), open_sessions);
    }
    case kAssetsId:
      return DirAttr(kAssetsId, NodeKind::kAssetsDir, 01777, 0, 0, Times::All(assets_dir_ns.load()),
                     asset_count.load());
    default:
      break;
  }
  if (auto s = ServedSessionOf(id)) {
    MutexLock lock(s->mu);
    if (s->state != SessionState::kGone) return AttrIn(*s, id);
  }
  auto loc = Locate(id);
  if (loc.status().IsNotFound()) {
    // A file of a removed asset, still open: as an unlinked file.
    MutexLock lock(handles_mu);
    if (auto it = removed_attrs.find(id); it != removed_attrs.end()) return it->second;
  }
  if (!loc.ok()) return loc.status();
  return AssetAttr(*loc);
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<Attr> Engine::GetAttr(uint64_t id) { return impl_->GetAttr(id); }

Result<Attr> Engine::Lookup(uint64_t parent, std::string_view name) {
  Impl& m = *impl_;
  if (name.size() > kMaxNameLength) return CheckName(name);
  switch (parent) {
    case kRootId:
      if (name == "sessions") return m.GetAttr(kSessionsId);
      if (name == "assets") return m.GetAttr(kAssetsId);
      return Status::NotFound("no " + Quote(name) + " at the mount root");
    case kSessionsId: {
      std::shared_ptr<Session> s;
      {
        MutexLock table(m.table_mu);
        UPFS_ASSIGN_OR_RETURN(s, m.FetchSession(name));
      }
      if (!s) return Status::NotFound("no open session " + Quote(name));
      MutexLock lock(s->mu);
      if (s->state == SessionState::kGone)
        return Status::NotFound("no open session " + Quote(name));
      return Impl::AttrIn(*s, s->id());
    }
    case kAssetsId: {
      AssetRecord r;
      Status st = m.store->GetAsset(name, &r);
      if (st.IsNotFound()) return Status::NotFound("no asset " + Quote(name));
      UPFS_RETURN_IF_ERROR(st);
      return m.RootAttrOf(r);
    }
    default:
      break;
  }
  if (auto s = m.ServedSessionOf(parent)) {
    MutexLock lock(s->mu);
    if (s->state != SessionState::kGone) {
      if (parent == s->id()) {
        if (name == kFinishName) return Impl::AttrIn(*s, s->id() + kFinishOffset);
        if (name == kStatusName) return Impl::AttrIn(*s, s->id() + kStatusOffset);
      }
      // Another mount's session shows its control files only, until its
      // holder's lease runs out (then this lookup takes it over).
      if (!s->holder.empty() && !m.TakeOver(*s, /*quiet=*/true).ok()) {
        return Status::NotFound("no " + Quote(name) + " in session " + Quote(s->record.name) +
                                " here: another mount holds it");
      }
      UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, parent));
      if (!IsDirectoryKind(kind)) return Status::NotDirectory("not a directory");
      UPFS_ASSIGN_OR_RETURN(auto children, s->DirChildren(parent));
      auto it = children->find(name);
      if (it == children->end())
        return Status::NotFound("no " + Quote(name) + " in session " + Quote(s->record.name));
      return Impl::AttrIn(*s, it->second);
    }
  }
  UPFS_ASSIGN_OR_RETURN(auto loc, m.Locate(parent));
  if (!loc.is_root()) {
    UPFS_ASSIGN_OR_RETURN(auto attr, m.AssetAttr(loc));
    if (attr.kind != NodeKind::kAssetDir) return Status::NotDirectory("not a directory");
  }
  AssetEntry e;
  Status st = m.store->GetAssetEntry(loc.asset, loc.ChildDir(), name, &e);
  if (st.IsNotFound())
    return Status::NotFound("no " + Quote(name) + " in asset " + Quote(loc.asset));
  UPFS_RETURN_IF_ERROR(st);
  return m.EntryAttrOf(e);
}

Result<std::vector<DirEntry>> Engine::ReadDir(uint64_t dir) {
  Impl& m = *impl_;
  std::vector<DirEntry> out;
  switch (dir) {
    case kRootId:
      out.push_back({"assets", kAssetsId, S_IFDIR});
      out.push_back({"sessions", kSessionsId, S_IFDIR});
      return out;
    case kSessionsId: {
      MutexLock lock(m.table_mu);
      UPFS_RETURN_IF_ERROR(m.RefreshSessions());
      for (const auto& [name, s] : m.sessions) out.push_back({name, s->id(), S_IFDIR});
      return out;
    }
    case kAssetsId: {
      std::vector<AssetRecord> assets;
      UPFS_RETURN_IF_ERROR(m.store->ListAssets(&assets));
      for (const AssetRecord& a : assets) out.push_back({a.name, a.root_id, S_IFDIR});
      return out;
    }
    default:
      break;
  }
  if (auto s = m.ServedSessionOf(dir)) {
    MutexLock lock(s->mu);
    if (s->state != SessionState::kGone) {
      if (!s->holder.empty())
        m.TakeOver(*s, /*quiet=*/true)
            .IgnoreError();  // as Lookup: control files only while held elsewhere
      UPFS_ASSIGN_OR_RETURN(auto children, s->DirChildren(dir));
      if (dir == s->id()) {
        out.push_back({std::string(kFinishName), s->id() + kFinishOffset, S_IFREG});
        out.push_back({std::string(kStatusName), s->id() + kStatusOffset, S_IFREG});
      }
      for (const auto& [name, id] : *children) {
        out.push_back({name, id, s->nodes.at(id).is_dir ? uint32_t{S_IFDIR} : uint32_t{S_IFREG}});
      }
      std::sort(out.begin(), out.end(),
                [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
      return out;
    }
  }
  UPFS_ASSIGN_OR_RETURN(auto loc, m.Locate(dir));
  std::vector<AssetEntry> entries;
  UPFS_RETURN_IF_ERROR(m.store->ListAssetDir(loc.asset, loc.ChildDir(), &entries));
  for (const AssetEntry& e : entries)
    out.push_back({e.name, e.id, e.is_dir ? uint32_t{S_IFDIR} : uint32_t{S_IFREG}});
  return out;
}

Result<store::Space> Engine::GetSpace() { return impl_->store->GetSpace(); }

Engine::Usage Engine::GetUsage() {
  Usage u;
  {
    MutexLock lock(impl_->table_mu);
    u.sessions = impl_->sessions.size();
  }
  u.assets = impl_->asset_count.load();
  return u;
}

Engine::Stats Engine::GetStats() {
  Stats stats;
  const Usage usage = GetUsage();
  stats.open_sessions = usage.sessions;
  stats.assets = usage.assets;
  impl_->counters.Fill(&stats);
  stats.quota_refusals = impl_->quota.refusals();
  if (impl_->notifier) {
    stats.post_commit_failures = impl_->notifier->failures();
    stats.post_commit_runs = impl_->notifier->delivered() + stats.post_commit_failures;
  }
  return stats;
}

}  // namespace upfs::session
