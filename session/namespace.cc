// Engine: changes to a session's namespace (mkdir, create, unlink, rmdir,
// rename), its attributes and extended attributes, and the removal of
// files that handles may still hold open.
#include <mutex>

#include <spdlog/spdlog.h>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

namespace {

// Linux's limits for one extended attribute.
constexpr size_t kMaxXattrValue = 64 * 1024;

bool IsReserved(std::string_view name) { return name == kFinishName || name == kStatusName; }

// `.finish` and `.status` exist only at a session's root. Anywhere else (a
// session's own name, a name in a subdirectory) they are refused rather
// than made ordinary: a manifest written to sub/.finish would silently be
// an upload instead of a commit. (At the root the names are taken:
// Exists, or NotPermitted for a rename onto them.)
Status CheckNotControlName(std::string_view name) {
  if (!IsReserved(name)) return Status::OK();
  return Status::InvalidArgument("name " + Quote(name) +
                                 " is reserved for the control file at a session's root");
}

// Extended attributes upfs stores: the user namespace. Others (ACLs,
// security labels) are refused as unsupported so tools such as `cp -a`
// skip them quietly.
Status CheckXattrName(std::string_view name) {
  if (name.rfind("user.", 0) != 0)
    return Status::NotSupported("only user.* extended attributes are stored");
  if (name.size() > 255) return Status::NameTooLong("extended attribute name too long");
  return Status::OK();
}

}  // namespace

// Changes the extended attributes of a session's root or node (kind
// kSessionRoot, kDir or kFile) through `edit`, and so its ctime.
Status Engine::Impl::EditXattrs(Session& s, uint64_t id, NodeKind kind,
                                const std::function<void(Xattrs&)>& edit) {
  const int64_t now = Now();
  Batch batch;
  if (kind == NodeKind::kSessionRoot) {
    SessionRecord r = s.record;
    edit(r.xattrs);
    r.ctime_ns = now;
    batch.Put(r);
    UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
    s.record = std::move(r);
    return Status::OK();
  }
  Node& n = s.NodeAt(id);
  NodeRecord rec = n.ToRecord();
  edit(rec.xattrs);
  rec.ctime_ns = now;
  if (!s.IsUnlinked(id)) batch.Put(s.id(), rec);  // unlinked: no record, memory only
  UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
  n.xattrs = std::move(rec.xattrs);
  n.SetCtime(now);
  return Status::OK();
}

// Takes file node `n` out of the namespace: its record goes in `batch`,
// and its bytes too unless a handle still has it open. Returns whether it
// stays open (then AfterFileRemoval keeps it among the unlinked).
bool Engine::Impl::AddFileRemoval(Session& s, const Node& n, Batch* batch) {
  batch->DeleteNodeRecord(s.id(), n.id);
  if (n.file->handles > 0) return true;
  batch->DeleteBlobData(n.id);
  return false;
}

// Applies the batch of AddFileRemoval for file `f`. Under the file's
// lock, so that no write lands between the deletion of its bytes and
// `removed`.
Status Engine::Impl::ApplyFileRemoval(Session& s, FileState& f, const Batch& batch,
                                      bool still_open) {
  MutexLock flock(f.mu);
  UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
  if (!still_open) {
    f.removed = true;
    Unhold(s, f.received.BytesReceived());
  }
  return Status::OK();
}

void Engine::Impl::Unhold(Session& s, uint64_t bytes) {
  s.held_bytes -= std::min(s.held_bytes.load(), bytes);
  if (s.counted) quota.ReleaseBytes(s.record.uid, bytes);
}

void Engine::Impl::Uncount(Session& s) {
  if (!s.counted) return;
  s.counted = false;
  quota.RemoveSession(s.record.uid, s.held_bytes.exchange(0));
}

// Once ApplyFileRemoval succeeded; the caller has erased the name from
// its directory.
void Engine::Impl::AfterFileRemoval(Session& s, uint64_t id, bool still_open) {
  auto node = s.nodes.extract(id);
  if (still_open) {
    s.unlinked.insert(std::move(node));
  } else {
    IndexRemove(id);
  }
}

// The last handle of an unlinked file was released: frees its bytes.
void Engine::Impl::FreeUnlinked(Session& s, uint64_t id) {
  auto it = s.unlinked.find(id);
  if (it == s.unlinked.end()) return;
  Batch batch;
  batch.DeleteBlobData(id);
  Status st = ApplyFileRemoval(s, *it->second.file, batch, /*still_open=*/false);
  if (!st.ok()) {
    // Nothing refers to the bytes any more; fsck finds and frees them.
    spdlog::warn("{}: freeing the bytes of the unlinked file failed (an orphan for upfs fsck): {}",
                 s.Where(id), st.ToString());
    FileState& f = *it->second.file;
    MutexLock flock(f.mu);
    f.removed = true;
    Unhold(s, f.received.BytesReceived());
  }
  s.unlinked.erase(it);
  IndexRemove(id);
}

Result<Attr> Engine::Mkdir(uint64_t parent, std::string_view name, uint32_t mode, Caller caller) {
  Impl& m = *impl_;
  UPFS_RETURN_IF_ERROR(CheckName(name));
  int64_t now = m.Now();
  if (parent == kSessionsId) {
    UPFS_RETURN_IF_ERROR(CheckNotControlName(name));
    MutexLock table(m.table_mu);
    if (m.sessions.count(name)) return Status::Exists("session " + Quote(name) + " is open");
    AssetRecord existing;
    Status st = m.store->GetAsset(name, &existing);
    if (st.ok()) return Status::Exists("asset " + Quote(name) + " is committed");
    if (!st.IsNotFound()) return st;
    auto s = m.NewSession();
    MutexLock session_lock(s->mu);  // uncontended: no other thread has the session yet
    SessionRecord& r = s->record;
    Result<uint64_t> ids = m.store->NewIds(store::kIdsPerSession);
    UPFS_RETURN_IF_ERROR(ids.status());
    r.id = *ids;
    r.name = std::string(name);
    r.uid = caller.uid;
    r.gid = caller.gid;
    r.mode = mode & 07777;
    r.created_ns = r.atime_ns = r.mtime_ns = r.ctime_ns = now;
    r.write_once = m.options.write_once_default;
    s->last_activity_ns = now;
    Batch batch;
    // Checked by the store too: another mount may take the name at the
    // same instant.
    batch.Create(r);
    if (Status st = m.quota.AddSession(caller.uid); !st.ok()) {
      st = st.WithContext("mkdir sessions/" + Quote(name));
      spdlog::warn("{}", st.message());
      return st;
    }
    if (Status st = m.store->Apply(batch, /*sync=*/false); !st.ok()) {
      m.quota.RemoveSession(caller.uid, 0);
      m.quota.GiveBack(caller.uid);
      return st;
    }
    s->counted = true;
    m.IndexAdd(r.id, s);
    m.IndexAdd(r.id + kFinishOffset, s);
    m.IndexAdd(r.id + kStatusOffset, s);
    spdlog::info("session {} begun by uid {} gid {} (write_once={})", Quote(name), caller.uid,
                 caller.gid, r.write_once);
    Attr attr = Impl::AttrIn(*s, r.id).value();
    m.sessions.emplace(std::string(name), std::move(s));
    m.sessions_dir_ns = now;
    return attr;
  }
  if (parent == kRootId)
    return Status::NotPermitted("the mount root holds only sessions/ and assets/");
  auto s = m.SessionOf(parent);
  if (!s) {
    // Under assets/ (or a stale id): the committed side never changes.
    return parent == kAssetsId || m.Locate(parent).ok()
               ? Status::ReadOnly("assets are read-only")
               : Status::NotFound("parent directory is gone");
  }
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  UPFS_ASSIGN_OR_RETURN(auto children, s->DirChildren(parent));
  if (parent != s->id()) UPFS_RETURN_IF_ERROR(CheckNotControlName(name));
  if ((parent == s->id() && IsReserved(name)) || children->count(name)) {
    return Status::Exists(Quote(name) + " exists in session " + Quote(s->record.name));
  }
  UPFS_ASSIGN_OR_RETURN(uint64_t new_id, m.store->NewIds(1));
  Node n;
  n.id = new_id;
  n.parent = parent;
  n.name = std::string(name);
  n.is_dir = true;
  n.mode = mode & 07777;
  n.uid = caller.uid;
  n.gid = caller.gid;
  n.atime_ns = n.dir_mtime_ns = n.dir_ctime_ns = now;
  Batch batch;
  batch.Put(s->id(), n.ToRecord());
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  uint64_t id = n.id;
  children->emplace(n.name, id);
  s->nodes.emplace(id, std::move(n));
  s->StampDir(parent, now);
  ++s->SubdirsOf(parent);
  s->last_activity_ns = now;
  m.IndexAdd(id, s);
  return Impl::AttrIn(*s, id);
}

Result<Attr> Engine::Create(uint64_t parent, std::string_view name, uint32_t mode, Caller caller) {
  Impl& m = *impl_;
  UPFS_RETURN_IF_ERROR(CheckName(name));
  if (parent == kRootId || parent == kSessionsId) {
    return Status::NotPermitted("files live inside a session: sessions/NAME/...");
  }
  auto s = m.SessionOf(parent);
  if (!s) return Status::ReadOnly("assets are read-only");
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  UPFS_ASSIGN_OR_RETURN(auto children, s->DirChildren(parent));
  if (parent != s->id()) UPFS_RETURN_IF_ERROR(CheckNotControlName(name));
  if ((parent == s->id() && IsReserved(name)) || children->count(name)) {
    return Status::Exists(Quote(name) + " exists in session " + Quote(s->record.name));
  }
  int64_t now = m.Now();
  UPFS_ASSIGN_OR_RETURN(uint64_t new_id, m.store->NewIds(1));
  Node n;
  n.id = new_id;
  n.parent = parent;
  n.name = std::string(name);
  n.mode = mode & 07777;
  n.uid = caller.uid;
  n.gid = caller.gid;
  n.file = std::make_shared<FileState>(m.store.get(), n.id);
  n.file->Modified(now);
  n.atime_ns = now;
  Batch batch;
  batch.Put(s->id(), n.ToRecord());
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  uint64_t id = n.id;
  children->emplace(n.name, id);
  s->nodes.emplace(id, std::move(n));
  s->StampDir(parent, now);
  s->last_activity_ns = now;
  m.IndexAdd(id, s);
  return Impl::AttrIn(*s, id);
}

Status Engine::Unlink(uint64_t parent, std::string_view name) {
  Impl& m = *impl_;
  if (parent == kRootId || parent == kSessionsId)
    return Status::IsDirectory(Quote(name) + " is a directory");
  auto s = m.SessionOf(parent);
  if (!s) return m.AssetRemovalRefused();
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  // The control files always exist; removing them is a no-op so that
  // `rm -r sessions/NAME` can abort a session.
  if (parent == s->id() && IsReserved(name)) return Status::OK();
  UPFS_ASSIGN_OR_RETURN(auto children, s->DirChildren(parent));
  auto it = children->find(name);
  if (it == children->end()) return Status::NotFound("no " + Quote(name));
  uint64_t id = it->second;
  Node& n = s->nodes.at(id);
  if (n.is_dir) return Status::IsDirectory(Quote(name) + " is a directory");
  const int64_t now = m.Now();
  Batch batch;
  const bool still_open = Impl::AddFileRemoval(*s, n, &batch);
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.ApplyFileRemoval(*s, *n.file, batch, still_open));
  n.SetCtime(now);  // its link count changed (fstat through a handle still open shows it)
  children->erase(it);
  m.AfterFileRemoval(*s, id, still_open);
  s->StampDir(parent, now);
  s->last_activity_ns = now;
  return Status::OK();
}

Status Engine::Rmdir(uint64_t parent, std::string_view name) {
  Impl& m = *impl_;
  if (parent == kRootId) return Status::NotPermitted("sessions/ and assets/ cannot be removed");
  if (parent == kSessionsId) {
    auto s = m.FindSession(name);
    if (!s) return Status::NotFound("no open session " + Quote(name));
    {
      MutexLock lock(s->mu);
      UPFS_RETURN_IF_ERROR(s->CheckOpen());
      if (!s->children.empty())
        return Status::NotEmpty("session " + Quote(name) + " still has files");
      s->state = SessionState::kGone;
    }
    Status st = m.DropSession(*s, /*sync=*/false);
    if (!st.ok()) {
      MutexLock lock(s->mu);
      s->state = SessionState::kOpen;
      return st.WithContext("aborting session " + Quote(name));
    }
    spdlog::info("session {} aborted", Quote(name));
    return Status::OK();
  }
  if (parent == kAssetsId) return m.RemoveAsset(name);
  auto s = m.SessionOf(parent);
  if (!s) return m.AssetRemovalRefused();
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  UPFS_ASSIGN_OR_RETURN(auto children, s->DirChildren(parent));
  auto it = children->find(name);
  if (it == children->end()) return Status::NotFound("no " + Quote(name));
  uint64_t id = it->second;
  Node& n = s->nodes.at(id);
  if (!n.is_dir) return Status::NotDirectory(Quote(name) + " is not a directory");
  if (n.HasChildren()) return Status::NotEmpty(Quote(name) + " is not empty");
  const int64_t now = m.Now();
  Batch batch;
  batch.DeleteNodeRecord(s->id(), id);
  s->AddDirStamp(parent, now, &batch);
  UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  children->erase(it);
  s->nodes.erase(id);
  m.IndexRemove(id);
  s->StampDir(parent, now);
  --s->SubdirsOf(parent);
  s->last_activity_ns = now;
  return Status::OK();
}

Status Engine::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name, bool no_replace, CommitInfo* committed) {
  Impl& m = *impl_;
  UPFS_RETURN_IF_ERROR(CheckName(new_name));
  if (parent == kSessionsId && new_parent == kAssetsId) {
    // Moving a session into assets/ commits it, as an empty manifest would.
    if (name != new_name) {
      return Status::InvalidArgument("a session commits under its own name: mv sessions/" +
                                     std::string(name) + " assets/");
    }
    auto s = m.FindSession(name);
    if (!s) return Status::NotFound("no open session " + Quote(name));
    return m.FinishSession(s, "", committed);
  }
  if (parent == kSessionsId && new_parent == kSessionsId) {
    if (name == new_name) return Status::OK();
    UPFS_RETURN_IF_ERROR(CheckNotControlName(new_name));
    MutexLock table(m.table_mu);
    auto it = m.sessions.find(name);
    if (it == m.sessions.end()) return Status::NotFound("no open session " + Quote(name));
    if (m.sessions.count(new_name))
      return Status::Exists("session " + Quote(new_name) + " is open");
    AssetRecord existing;
    if (m.store->GetAsset(new_name, &existing).ok())
      return Status::Exists("asset " + Quote(new_name) + " exists");
    std::shared_ptr<Session> s = it->second;
    MutexLock lock(s->mu);
    UPFS_RETURN_IF_ERROR(s->CheckOpen());
    SessionRecord renamed = s->record;
    renamed.name = std::string(new_name);
    const int64_t now = m.Now();
    renamed.ctime_ns = now;
    Batch batch;
    batch.Delete(s->record);
    batch.Create(renamed);
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    spdlog::info("session {} renamed to {}", Quote(name), Quote(new_name));
    s->record = std::move(renamed);
    m.sessions.erase(it);
    m.sessions.emplace(std::string(new_name), std::move(s));
    m.sessions_dir_ns = now;
    return Status::OK();
  }
  auto fixed = [](uint64_t id) { return id == kRootId || id == kSessionsId || id == kAssetsId; };
  auto src = fixed(parent) ? nullptr : m.SessionOf(parent);
  auto dst = fixed(new_parent) ? nullptr : m.SessionOf(new_parent);
  if (!src || !dst) {
    // Anything renamed out of, into or within assets/ is a change to the
    // committed side.
    if (parent == kAssetsId || new_parent == kAssetsId || (!fixed(new_parent) && !dst)) {
      return Status::ReadOnly("assets are read-only");
    }
    if (!fixed(parent) && !src) return Status::ReadOnly("assets are read-only");
    return Status::NotPermitted("only whole sessions move between sessions/ and assets/");
  }
  if (src != dst) return Status::CrossSession("rename between sessions");
  Session& s = *src;
  MutexLock lock(s.mu);
  UPFS_RETURN_IF_ERROR(s.CheckOpen());
  if ((parent == s.id() && IsReserved(name)) || (new_parent == s.id() && IsReserved(new_name))) {
    return Status::NotPermitted(".finish and .status cannot be renamed or replaced");
  }
  if (new_parent != s.id()) UPFS_RETURN_IF_ERROR(CheckNotControlName(new_name));
  UPFS_ASSIGN_OR_RETURN(auto from, s.DirChildren(parent));
  UPFS_ASSIGN_OR_RETURN(auto to, s.DirChildren(new_parent));
  auto it = from->find(name);
  if (it == from->end()) return Status::NotFound("no " + Quote(name));
  uint64_t id = it->second;
  Node& n = s.nodes.at(id);
  if (n.is_dir) {
    // A directory cannot move into its own subtree.
    for (uint64_t p = new_parent; p != s.id(); p = s.nodes.at(p).parent) {
      if (p == id) return Status::InvalidArgument("cannot move a directory into itself");
    }
  }
  Batch batch;
  Node* victim = nullptr;
  bool victim_open = false;
  auto target = to->find(new_name);
  if (target != to->end()) {
    if (target->second == id) return Status::OK();
    if (no_replace) return Status::Exists(Quote(new_name) + " exists");
    victim = &s.nodes.at(target->second);
    if (victim->is_dir && !n.is_dir)
      return Status::IsDirectory(Quote(new_name) + " is a directory");
    if (!victim->is_dir && n.is_dir)
      return Status::NotDirectory(Quote(new_name) + " is not a directory");
    if (victim->is_dir && victim->HasChildren())
      return Status::NotEmpty(Quote(new_name) + " is not empty");
    if (victim->file) {
      victim_open = Impl::AddFileRemoval(s, *victim, &batch);
    } else {
      batch.DeleteNodeRecord(s.id(), victim->id);
    }
  }
  // Linux sets the ctime of the node renamed and the mtime and ctime of
  // both directories.
  const int64_t now = m.Now();
  NodeRecord moved = n.ToRecord();
  moved.parent = new_parent;
  moved.name = std::string(new_name);
  moved.ctime_ns = now;
  batch.Put(s.id(), moved);
  s.AddDirStamp(parent, now, &batch);
  if (new_parent != parent) s.AddDirStamp(new_parent, now, &batch);
  if (victim && victim->file) {
    UPFS_RETURN_IF_ERROR(m.ApplyFileRemoval(s, *victim->file, batch, victim_open));
  } else {
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
  }
  if (victim) {
    uint64_t vid = victim->id;
    to->erase(target);
    if (victim->file) {
      victim->SetCtime(now);
      m.AfterFileRemoval(s, vid, victim_open);
    } else {
      s.nodes.erase(vid);
      m.IndexRemove(vid);
      --s.SubdirsOf(new_parent);
    }
  }
  from->erase(it);  // still valid: erasing `target` leaves other map iterators alone
  to->emplace(std::string(new_name), id);
  n.parent = new_parent;
  n.name = std::string(new_name);
  n.SetCtime(now);
  if (n.is_dir) {
    --s.SubdirsOf(parent);
    ++s.SubdirsOf(new_parent);
  }
  s.StampDir(parent, now);
  s.StampDir(new_parent, now);
  s.last_activity_ns = now;
  return Status::OK();
}

Result<Attr> Engine::SetAttr(uint64_t id, const AttrChange& change, Credentials* caller) {
  Impl& m = *impl_;
  if (id == kRootId || id == kSessionsId || id == kAssetsId) {
    return Status::NotPermitted("the mount's fixed directories cannot change");
  }
  auto s = m.SessionOf(id);
  if (!s) {
    UPFS_RETURN_IF_ERROR(m.Locate(id).status());  // a stale id: NotFound
    return Status::ReadOnly("assets are read-only");
  }
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, id));
  int64_t now = m.Now();
  s->last_activity_ns = now;
  switch (kind) {
    case NodeKind::kFinish:
      // touch(1) sets times and a shell's `>` may truncate before writing
      // the manifest: accepted, and nothing to store (the manifest lives in
      // the writing handle). Anything else would be a lie to accept.
      if (change.mode || change.uid || change.gid) {
        return Status::NotPermitted(".finish's mode and owner are fixed");
      }
      if (change.size && *change.size != 0) {
        return Status::InvalidArgument(
            ".finish can only be truncated to 0; write the manifest into it");
      }
      return Impl::AttrIn(*s, id);
    case NodeKind::kStatus:
      return Status::ReadOnly(".status is read-only");
    case NodeKind::kSessionRoot: {
      if (change.size) return Status::IsDirectory("session directory");
      SessionRecord r = s->record;
      if (change.mode) r.mode = *change.mode & 07777;
      if (change.uid) r.uid = *change.uid;
      if (change.gid) r.gid = *change.gid;
      if (change.atime_ns) r.atime_ns = *change.atime_ns;
      if (change.mtime_ns) r.mtime_ns = *change.mtime_ns;
      r.ctime_ns = now;
      Batch batch;
      batch.Put(r);
      UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
      const uint32_t from = s->record.uid, to = r.uid;
      const bool moved = s->counted && from != to;
      if (moved) m.quota.MoveSession(from, to, s->held_bytes);
      s->record = std::move(r);
      Result<Attr> attr = Impl::AttrIn(*s, id);
      lock.Unlock();
      // Several mounts: the grants follow the session, which asks the
      // store, so not under the session's lock.
      if (moved) m.quota.Resettle(from, to);
      return attr;
    }
    default:
      break;
  }
  Node& n = s->NodeAt(id);
  if (change.size) {
    if (n.is_dir) return Status::IsDirectory(Quote(n.name) + " is a directory");
    // The kernel clears setuid itself with this change, but setgid only
    // with group-execute: the rule for a caller outside the group is ours.
    if (caller) UPFS_RETURN_IF_ERROR(m.ClearSetid(*s, n, *caller, "truncate"));
    Status st = m.TruncateFile(*s, n, *change.size);
    if (!st.ok())
      return st.WithContext(s->Where(id) + " truncate to " + std::to_string(*change.size));
  }
  // Every other change (even one of ctime alone, as the kernel may send)
  // sets ctime to now, as notify_change does.
  if (change.mode || change.uid || change.gid || change.atime_ns || change.mtime_ns ||
      !change.size) {
    NodeRecord rec = n.ToRecord();
    if (change.mode) rec.mode = *change.mode & 07777;
    if (change.uid) rec.uid = *change.uid;
    if (change.gid) rec.gid = *change.gid;
    if (change.atime_ns) rec.atime_ns = *change.atime_ns;
    if (change.mtime_ns) rec.mtime_ns = *change.mtime_ns;
    rec.ctime_ns = now;
    Batch batch;
    if (!s->IsUnlinked(id)) batch.Put(s->id(), rec);  // unlinked: no record, memory only
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    n.mode = rec.mode;
    n.uid = rec.uid;
    n.gid = rec.gid;
    n.atime_ns = rec.atime_ns;
    if (n.file) {
      // Only what changed: a write may have moved the mtime since `rec`.
      if (change.mtime_ns) n.file->mtime_ns = *change.mtime_ns;
    } else {
      n.dir_mtime_ns = rec.mtime_ns;
    }
    n.SetCtime(now);
  }
  return Impl::AttrIn(*s, id);
}

Status Engine::SetXattr(uint64_t id, std::string_view name, std::string_view value) {
  Impl& m = *impl_;
  auto s = m.SessionOf(id);
  if (!s) {
    if (id == kRootId || id == kSessionsId)
      return Status::NotPermitted("no extended attributes here");
    return Status::ReadOnly("assets are read-only");
  }
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, id));
  if (kind == NodeKind::kFinish || kind == NodeKind::kStatus) {
    return Status::NotPermitted("control files have no extended attributes");
  }
  if (kind == NodeKind::kSessionRoot && name == kWriteOnceXattr) {
    if (value != "0" && value != "1") {
      return Status::InvalidArgument(std::string(kWriteOnceXattr) + " takes \"0\" or \"1\"");
    }
    SessionRecord r = s->record;
    r.write_once = value == "1";
    r.ctime_ns = m.Now();
    Batch batch;
    batch.Put(r);
    UPFS_RETURN_IF_ERROR(m.store->Apply(batch, /*sync=*/false));
    s->record = std::move(r);
    spdlog::info("session {}: write_once={}", Quote(s->record.name), s->record.write_once);
    return Status::OK();
  }
  if (kind == NodeKind::kSessionRoot && name == kLeftOutXattr) {
    return Status::NotPermitted(std::string(kLeftOutXattr) + " is set by the commit");
  }
  UPFS_RETURN_IF_ERROR(CheckXattrName(name));
  if (value.size() > kMaxXattrValue)
    return Status::TooLarge("extended attribute value over 64 KiB");
  return m.EditXattrs(*s, id, kind, [&](Xattrs& x) { x[std::string(name)] = std::string(value); });
}

Result<std::string> Engine::GetXattr(uint64_t id, std::string_view name) {
  Impl& m = *impl_;
  auto absent = [&] { return Status::NoAttribute("no extended attribute " + Quote(name)); };
  if (auto s = m.SessionOf(id)) {
    MutexLock lock(s->mu);
    if (s->state != SessionState::kGone) {
      UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, id));
      const Xattrs* xattrs = nullptr;
      if (kind == NodeKind::kSessionRoot) {
        if (name == kWriteOnceXattr) return std::string(s->record.write_once ? "1" : "0");
        xattrs = &s->record.xattrs;
      } else if (kind == NodeKind::kDir || kind == NodeKind::kFile) {
        xattrs = &s->NodeAt(id).xattrs;
      }
      if (!xattrs) return absent();
      auto it = xattrs->find(std::string(name));
      if (it == xattrs->end()) return absent();
      return it->second;
    }
  }
  if (id == kRootId || id == kSessionsId || id == kAssetsId) return absent();
  UPFS_ASSIGN_OR_RETURN(auto loc, m.Locate(id));
  Xattrs xattrs;
  if (loc.is_root()) {
    AssetRecord r;
    UPFS_RETURN_IF_ERROR(m.store->GetAsset(loc.asset, &r));
    xattrs = std::move(r.xattrs);
  } else {
    AssetEntry e;
    UPFS_RETURN_IF_ERROR(m.store->GetAssetEntry(loc.asset, loc.dir, loc.name, &e));
    if (!e.is_dir && name == kSha256Xattr) return e.sha256;
    xattrs = std::move(e.xattrs);
  }
  auto it = xattrs.find(std::string(name));
  if (it == xattrs.end()) return absent();
  return it->second;
}

Result<std::vector<std::string>> Engine::ListXattr(uint64_t id) {
  Impl& m = *impl_;
  std::vector<std::string> names;
  if (auto s = m.SessionOf(id)) {
    MutexLock lock(s->mu);
    if (s->state != SessionState::kGone) {
      UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, id));
      if (kind == NodeKind::kSessionRoot) {
        names.emplace_back(kWriteOnceXattr);
        for (const auto& [k, v] : s->record.xattrs) names.push_back(k);
      } else if (kind == NodeKind::kDir || kind == NodeKind::kFile) {
        for (const auto& [k, v] : s->NodeAt(id).xattrs) names.push_back(k);
      }
      return names;
    }
  }
  if (id == kRootId || id == kSessionsId || id == kAssetsId) return names;
  UPFS_ASSIGN_OR_RETURN(auto loc, m.Locate(id));
  if (loc.is_root()) {
    AssetRecord r;
    UPFS_RETURN_IF_ERROR(m.store->GetAsset(loc.asset, &r));
    for (const auto& [k, v] : r.xattrs) names.push_back(k);
  } else {
    AssetEntry e;
    UPFS_RETURN_IF_ERROR(m.store->GetAssetEntry(loc.asset, loc.dir, loc.name, &e));
    if (!e.is_dir) names.emplace_back(kSha256Xattr);
    for (const auto& [k, v] : e.xattrs) names.push_back(k);
  }
  return names;
}

Status Engine::RemoveXattr(uint64_t id, std::string_view name) {
  Impl& m = *impl_;
  auto s = m.SessionOf(id);
  if (!s) {
    if (id == kRootId || id == kSessionsId)
      return Status::NotPermitted("no extended attributes here");
    return Status::ReadOnly("assets are read-only");
  }
  MutexLock lock(s->mu);
  UPFS_RETURN_IF_ERROR(s->CheckOpen());
  UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, id));
  if (kind == NodeKind::kSessionRoot && name == kWriteOnceXattr) {
    return Status::NotPermitted("set " + std::string(kWriteOnceXattr) + " to 0 instead");
  }
  Xattrs* xattrs = kind == NodeKind::kSessionRoot                        ? &s->record.xattrs
                   : (kind == NodeKind::kDir || kind == NodeKind::kFile) ? &s->NodeAt(id).xattrs
                                                                         : nullptr;
  if (!xattrs || !xattrs->count(std::string(name)))
    return Status::NoAttribute("no extended attribute " + Quote(name));
  return m.EditXattrs(*s, id, kind, [&](Xattrs& x) { x.erase(std::string(name)); });
}

}  // namespace upfs::session
