// Engine: open, flush and release of file handles on session files,
// control files and committed files.
#include <mutex>

#include <spdlog/spdlog.h>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

Result<OpenedHandle> Engine::OpenHandle(uint64_t id, OpenMode mode, Credentials* opener) {
  Impl& m = *impl_;
  auto h = std::make_shared<Handle>();
  h->id = id;
  h->writes = mode.write || mode.truncate;
  if (auto s = m.ServedSessionOf(id)) {
    MutexLock lock(s->mu);
    if (s->state == SessionState::kGone) return s->CheckOpen();
    UPFS_ASSIGN_OR_RETURN(auto kind, Impl::KindIn(*s, id));
    h->kind = kind;
    h->session = s;
    switch (kind) {
      case NodeKind::kFinish:
        if (mode.read)
          return Status::PermissionDenied(".finish is write-only: write a manifest into it");
        UPFS_RETURN_IF_ERROR(s->CheckOpen());
        break;
      case NodeKind::kStatus:
        if (mode.write) return Status::ReadOnly(".status is read-only");
        lock.Unlock();
        {
          std::string text = m.Report(*s);
          MutexLock handle_lock(h->mu);
          h->text = std::move(text);
        }
        lock.Lock();
        break;
      case NodeKind::kFile: {
        Node& n = s->NodeAt(id);
        h->file = n.file;
        if (mode.write || mode.truncate) UPFS_RETURN_IF_ERROR(s->CheckOpen());
        // open(O_TRUNC) clears setuid/setgid as truncate(2) does, even of
        // an empty file (the kernel does not send that change itself when
        // the open truncates: FUSE_CAP_ATOMIC_O_TRUNC).
        if (mode.truncate && opener)
          UPFS_RETURN_IF_ERROR(m.ClearSetid(*s, n, *opener, "open(O_TRUNC)"));
        if (mode.truncate && n.file->length.load() > 0) {
          Status st = m.TruncateFile(*s, n, 0);
          if (!st.ok()) return st.WithContext(s->Where(id) + " O_TRUNC");
        }
        ++n.file->handles;
        break;
      }
      default:
        return Status::IsDirectory("directories are not opened as files");
    }
    // Reading .status only looks: it neither touches the session nor keeps
    // it from expiring, so a monitor polling .status does not keep an
    // abandoned upload alive (its handle holds a snapshot, not the session).
    if (kind != NodeKind::kStatus) {
      ++s->open_handles;
      s->last_activity_ns = m.Now();
    }
  } else {
    // Not while the asset is being removed: then it is gone, or this
    // handle is one the removal waits for.
    ReaderLock removal(m.asset_removal_mu);
    UPFS_ASSIGN_OR_RETURN(auto entry, m.AssetEntryOf(id));
    if (entry.is_dir) return Status::IsDirectory("directory");
    if (mode.write || mode.truncate) return Status::ReadOnly("assets are read-only");
    h->kind = NodeKind::kAssetFile;
    h->asset_blob = m.store->OpenCommittedBlob(entry.id);
    h->asset_length = entry.length;
    // Several mounts: this mount's first reader of the file is recorded in
    // the store before it is served, so that a removal on another mount
    // keeps the bytes for it (a removal that came first: ENOENT).
    MutexLock records(m.reader_records_mu);
    if (!m.store->MountId().empty()) {
      bool first = false;
      {
        MutexLock lock(m.handles_mu);
        first = m.asset_readers.count(id) == 0;
      }
      // A record kept idle since the last close still stands.
      if (first && m.idle_reader_records.erase(id) == 0) {
        Status st = m.store->AddReader(id, {entry.asset, entry.dir, entry.name});
        if (st.IsNotFound()) return Status::NotFound("the file's asset was removed");
        UPFS_RETURN_IF_ERROR(st.WithContext("recording a reader of the committed file"));
      }
    }
    MutexLock lock(m.handles_mu);
    ++m.asset_readers[id];
    const OpenedHandle opened{m.next_handle++, h->kind};
    m.handles.emplace(opened.handle, std::move(h));
    return opened;
  }
  MutexLock lock(m.handles_mu);
  const OpenedHandle opened{m.next_handle++, h->kind};
  m.handles.emplace(opened.handle, std::move(h));
  return opened;
}

bool Engine::CloseWaitsForWrites() const { return impl_->store->AcknowledgesEarly(); }

Status Engine::Fsync(uint64_t id, uint64_t handle) {
  Impl& m = *impl_;
  if (!m.store->AcknowledgesEarly()) return Status::OK();
  auto h = m.FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  // A handle that cannot write has nothing of its own to wait for, and
  // must not take a writer's loss (it is reported once).
  if (h->kind != NodeKind::kFile || !h->writes || !h->file || !h->session) return Status::OK();
  Status st = m.store->FlushBlob(h->file->blob);
  if (st.ok()) return st;
  Session& s = *h->session;
  std::string where;
  {
    MutexLock lock(s.mu);
    where = s.Where(id);
    s.last_error = st.message();
  }
  spdlog::error("{}: {}", where, st.ToString());
  m.ForgetLostBytes({h->file}, where);
  return st.WithContext(where);
}

Status Engine::Flush(uint64_t id, uint64_t handle, CommitInfo* committed) {
  auto h = impl_->FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  if (h->kind == NodeKind::kFile) return Fsync(id, handle);
  if (h->kind != NodeKind::kFinish) return Status::OK();
  MutexLock lock(h->mu);
  if (!h->commit_result) {
    h->commit_result = impl_->FinishSession(h->session, h->text, committed);
  }
  return *h->commit_result;
}

Status Engine::Release(uint64_t id, uint64_t handle) {
  Impl& m = *impl_;
  std::shared_ptr<Handle> h;
  {
    MutexLock lock(m.handles_mu);
    auto it = m.handles.find(handle);
    if (it == m.handles.end() || it->second->id != id)
      return Status::InvalidArgument("unknown file handle");
    h = std::move(it->second);
    m.handles.erase(it);
  }
  if (h->kind == NodeKind::kAssetFile) {
    // The last reader of a removed asset's file frees its bytes; with
    // several mounts, the last one of every live mount.
    ReaderLock removal(m.asset_removal_mu);
    MutexLock records(m.reader_records_mu);
    bool free = false, last = false;
    {
      MutexLock lock(m.handles_mu);
      auto it = m.asset_readers.find(id);
      if (it != m.asset_readers.end() && --it->second == 0) {
        m.asset_readers.erase(it);
        last = true;
        free = m.removed_waiting.erase(id) > 0;
        m.removed_attrs.erase(id);
      }
    }
    if (last && !m.store->MountId().empty()) free = m.LastReaderOfSharedFile(id, free);
    if (free) m.FreeRemoved({id});
    return Status::OK();
  }
  Status st;
  if (h->kind == NodeKind::kFinish) {
    MutexLock lock(h->mu);
    if (!h->commit_result) h->commit_result = m.FinishSession(h->session, h->text, nullptr);
    st = *h->commit_result;
  }
  if (h->session && h->kind != NodeKind::kStatus) {
    Session& s = *h->session;
    MutexLock lock(s.mu);
    --s.open_handles;
    s.last_activity_ns = m.Now();
    if (h->file && --h->file->handles == 0 && s.IsUnlinked(id)) m.FreeUnlinked(s, id);
  }
  return st;
}

}  // namespace upfs::session
