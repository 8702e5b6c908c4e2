// Engine: the write path (writes, truncation and the setuid/setgid rule),
// the SHA-256 kept in file order as bytes arrive, and reads.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include <spdlog/spdlog.h>

#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

namespace {

// Bytes read back from the store per step when catching a hash up.
constexpr size_t kCatchUpBytes = size_t{1} << 20;

}  // namespace

// ---- hashing ----

// Hashes up to kCatchUpBytes of received bytes from the frontier on, as
// far as they are contiguous. Returns whether more may follow.
bool Engine::Impl::CatchUpStep(FileState& f) {
  // A feeder, or the writer of the bytes at the frontier, schedules what
  // is left once it is done.
  if (!f.hash.valid() || f.feeding || f.FrontierPending()) return false;
  uint64_t from = f.hash.frontier();
  uint64_t to = std::min(f.received.ContiguousEnd(from), f.length.load());
  if (to <= from) return false;
  size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, kCatchUpBytes));
  std::string buf(n, '\0');
  Status s = f.Blob()->ReadAt(from, n, buf.data());
  if (!s.ok()) {
    // Finish rehashes from scratch and reports the read error there.
    spdlog::warn("hash catch-up read at offset {} failed: {}", from, s.ToString());
    f.hash.Invalidate();
    return false;
  }
  f.hash.Feed(from, buf);
  f.feed_done.SignalAll();  // pending writes whose bytes these were, or after them
  return true;
}

// Hashes received bytes from the frontier on, as far as they are
// contiguous.
void Engine::Impl::CatchUp(FileState& f) {
  f.WaitForFeeds();
  while (CatchUpStep(f)) {
  }
}

// Whether received bytes wait beyond the frontier.
bool Engine::Impl::NeedsCatchUp(const FileState& f) const {
  if (!f.hash.valid() || f.feeding || f.FrontierPending()) return false;
  const uint64_t from = f.hash.frontier();
  return std::min(f.received.ContiguousEnd(from), f.length.load()) > from;
}

void Engine::Impl::ScheduleCatchUp(const std::shared_ptr<FileState>& f) {
  if (f->catch_up_queued.exchange(true)) return;  // already waiting its turn
  {
    MutexLock lock(catch_up_mu);
    catch_up_queue.push_back(f);
  }
  catch_up_wake.Signal();
}

void Engine::Impl::CatchUpLoop() {
  for (;;) {
    std::shared_ptr<FileState> f;
    {
      MutexLock lock(catch_up_mu);
      while (!catch_up_stopping && catch_up_queue.empty()) catch_up_wake.Wait(catch_up_mu);
      if (catch_up_stopping) return;
      f = std::move(catch_up_queue.front());
      catch_up_queue.pop_front();
    }
    f->catch_up_queued = false;
    // One step per hold of the lock, so writers to the file interleave.
    for (bool more = true; more;) {
      {
        MutexLock lock(catch_up_mu);
        if (catch_up_stopping) return;
      }
      MutexLock flock(f->mu);
      more = !f->removed && CatchUpStep(*f);
    }
  }
}

void Engine::Impl::StopCatchUp() {
  {
    MutexLock lock(catch_up_mu);
    catch_up_stopping = true;
    catch_up_queue.clear();  // a hash left behind is completed by finish
  }
  catch_up_wake.SignalAll();
  if (catch_up_thread.joinable()) catch_up_thread.join();
}

// The SHA-256 of a complete file, rehashing from the store if needed.
Result<std::string> Engine::Impl::FullHash(FileState& f) {
  f.WaitForFeeds();
  if (!f.hash.valid()) f.hash.Reset();
  CatchUp(f);
  if (!f.hash.valid()) return Status::IOError("reading the file back to hash it failed");
  if (f.hash.frontier() != f.length.load()) {
    return Status::MissingData("hash stopped at offset " + std::to_string(f.hash.frontier()));
  }
  return f.hash.HexDigest();
}

// ---- writes ----

Status Engine::Impl::WriteFile(Session& s, uint64_t id, const std::shared_ptr<FileState>& file,
                               uint64_t offset, std::string_view data, Credentials* writer,
                               std::optional<uint64_t>* deferred_feed) {
  FileState& f = *file;
  bool write_once;
  uint32_t owner;
  {
    MutexLock lock(s.mu);
    UPFS_RETURN_IF_ERROR(s.CheckOpen());
    if (f.removed) return Status::Stale(s.Where(id) + " was removed");
    if (writer) UPFS_RETURN_IF_ERROR(ClearSetid(s, s.NodeAt(id), *writer, "write"));
    write_once = s.record.write_once;
    owner = s.record.uid;
    ++s.writes_in_flight;
    s.last_activity_ns = Now();
  }
  bool catch_up = false;
  Status st =
      WriteLocked(f, offset, data, write_once, owner, &s.held_bytes, &catch_up, deferred_feed);
  // A deferred write ends in the work Engine::Write hands back.
  if (!deferred_feed || !deferred_feed->has_value()) EndWrite(s, id, file, offset, &st, catch_up);
  return st;
}

void Engine::Impl::EndWrite(Session& s, uint64_t id, const std::shared_ptr<FileState>& file,
                            uint64_t offset, Status* st, bool catch_up) {
  {
    MutexLock lock(s.mu);
    if (!st->ok()) {
      *st = st->WithContext(s.Where(id) + " offset " + std::to_string(offset));
      s.last_error = st->message();
      MutexLock flock(file->mu);
      file->SetError(st->message());
    }
    if (--s.writes_in_flight == 0) s.writes_done.SignalAll();
  }
  if (catch_up) ScheduleCatchUp(file);
}

void Engine::Impl::FeedAfterReply(FileState& f, uint64_t offset, std::string_view data,
                                  uint64_t epoch, bool* catch_up) {
  const uint64_t end = offset + data.size();
  MutexLock lock(f.mu);
  for (;;) {
    if (epoch != f.hash_epoch || !f.hash.valid() || f.hash.frontier() >= end) break;
    if (f.feeding) {
      f.feed_done.Wait(f.mu);
      continue;
    }
    const uint64_t frontier = f.hash.frontier();
    if (frontier >= offset) {
      f.feeding = true;
      Sha256* sha = f.hash.BeginFeed();
      lock.Unlock();
      sha->Update(data.substr(frontier - offset));
      lock.Lock();
      f.hash.EndFeed(end);
      f.feeding = false;
      break;
    }
    // Bytes before these are pending too: their writer feeds them first.
    // Else there is a gap: the background hasher takes these once it is
    // filled.
    if (!f.FrontierPending()) break;
    f.feed_done.Wait(f.mu);
  }
  std::erase_if(f.pending_feeds, [&](const FileState::PendingFeed& p) {
    return p.begin == offset && p.end == end && p.epoch == epoch;
  });
  f.feed_done.SignalAll();
  *catch_up = NeedsCatchUp(f);
}

Status Engine::Impl::WriteLocked(FileState& f, uint64_t offset, std::string_view data,
                                 bool write_once, uint32_t owner, std::atomic<uint64_t>* held,
                                 bool* catch_up, std::optional<uint64_t>* deferred_feed) {
  if (offset >= store::kMaxBlobLength || data.size() > store::kMaxBlobLength - offset) {
    return Status::TooLarge("write ends beyond 2^62 bytes, the largest file upfs stores");
  }
  if (data.empty()) return Status::OK();
  uint64_t end = offset + data.size();
  MutexLock lock(f.mu);
  // Bytes a pending write is about to hash are not changed under it.
  while (f.PendingMeets(offset, end)) f.feed_done.Wait(f.mu);
  if (f.removed) return Status::Stale("file was removed");
  bool rewrites_hashed = false;
  bool skip_store = false;
  uint64_t covered = 0;  // bytes of this write received before
  if (f.received.Intersects(offset, end)) {
    // Slow path: bytes already received are being rewritten. Compare so
    // that identical rewrites (resumed uploads, retries) keep the hash and
    // write-once sessions can refuse different bytes.
    std::string old(data.size(), '\0');
    UPFS_RETURN_IF_ERROR(f.Blob()->ReadAt(offset, data.size(), old.data()));
    uint64_t hashed_end = f.hash.valid() ? f.hash.frontier() : 0;
    bool differs = false;
    for (const Extent& e : f.received.Covered(offset, end)) {
      covered += e.end - e.begin;
      size_t at = e.begin - offset, n = e.end - e.begin;
      if (std::memcmp(old.data() + at, data.data() + at, n) == 0) continue;
      differs = true;
      if (e.begin < hashed_end) {
        uint64_t cmp_end = std::min(e.end, hashed_end);
        rewrites_hashed |= std::memcmp(old.data() + at, data.data() + at, cmp_end - e.begin) != 0;
      }
      if (write_once) {
        return Status::WriteConflict("write-once session: bytes in " + RangeText(e.begin, e.end) +
                                     " differ from those already received");
      }
    }
    skip_store = !differs && covered == data.size();
  }
  // The owner's quota first: nothing of a refused write is stored.
  const uint64_t fresh = data.size() - covered;
  UPFS_RETURN_IF_ERROR(quota.ReserveBytes(owner, fresh));
  if (!skip_store) {
    if (Status st = f.Blob()->WriteAt(offset, data); !st.ok()) {
      quota.ReleaseBytes(owner, fresh);
      return st;
    }
  }
  *held += fresh;
  counters.Received(fresh);
  f.received.Add(offset, end);
  if (end > f.length.load()) f.length = end;
  f.Modified(Now());
  if (rewrites_hashed) {
    f.hash.Invalidate();
  } else if (deferred_feed) {
    f.pending_feeds.push_back({offset, end, f.hash_epoch});
    *deferred_feed = f.hash_epoch;
  } else if (!f.feeding && f.hash.Feed(offset, data)) {
    f.feed_done.SignalAll();  // pending writes after these bytes may go on
    // This write filled the gap before bytes that came earlier: the
    // background hasher reads them back (see Impl's catch_up_thread).
    *catch_up = NeedsCatchUp(f);
  }
  return Status::OK();
}

// Clears the setuid/setgid bits of file `n` that a write or truncate by
// `who` clears on a local filesystem (see Credentials).
Status Engine::Impl::ClearSetid(Session& s, Node& n, Credentials& who, const char* op) {
  if (n.is_dir || !(n.mode & (S_ISUID | S_ISGID))) return Status::OK();
  uint32_t clear = n.mode & S_ISUID;
  if ((n.mode & S_ISGID) && ((n.mode & S_IXGRP) || !who.InGroup(n.gid))) clear |= S_ISGID;
  if (clear == 0 || who.HasCapFsetid()) return Status::OK();
  NodeRecord rec = n.ToRecord();
  rec.mode &= ~clear;
  rec.ctime_ns = Now();
  Batch batch;
  if (!s.IsUnlinked(n.id)) batch.Put(s.id(), rec);  // unlinked: no record, memory only
  UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
  n.mode = rec.mode;
  n.SetCtime(rec.ctime_ns);
  spdlog::info("{}: {} by a caller without CAP_FSETID cleared mode bits {:o} (now {:o})",
               s.Where(n.id), op, clear, n.mode);
  return Status::OK();
}

// Sets a file's length.
Status Engine::Impl::TruncateFile(Session& s, Node& n, uint64_t size) {
  if (size > store::kMaxBlobLength) return Status::TooLarge("length beyond 2^62 bytes");
  FileState& f = *n.file;
  MutexLock lock(f.mu);
  // The hash is not reset under a feed; pending writes' bytes may be cut
  // away, so they are left to the background hasher (a new epoch).
  while (f.feeding) f.feed_done.Wait(f.mu);
  NodeRecord rec = n.ToRecord();
  rec.length = size;
  rec.mtime_ns = rec.ctime_ns = Now();
  Batch batch;
  if (size < f.received.End()) batch.Truncate(n.id, size);
  if (!s.IsUnlinked(n.id)) batch.Put(s.id(), rec);
  UPFS_RETURN_IF_ERROR(store->Apply(batch, /*sync=*/false));
  const uint64_t before = f.received.BytesReceived();
  f.received.Truncate(size);
  Unhold(s, before - f.received.BytesReceived());
  f.length = size;
  f.Modified(rec.mtime_ns);
  ++f.hash_epoch;
  f.feed_done.SignalAll();
  if (size == 0) {
    f.hash.Reset();
  } else if (f.hash.valid() && f.hash.frontier() > size) {
    f.hash.Invalidate();  // SHA-256 cannot step back
  }
  return Status::OK();
}

Result<size_t> Engine::Write(uint64_t id, uint64_t handle, uint64_t offset, std::string_view data,
                             Credentials* writer, std::function<void()>* after_reply) {
  Impl& m = *impl_;
  auto h = m.FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  switch (h->kind) {
    case NodeKind::kFile:
      // POSIX: a write crossing the largest file size writes the bytes
      // below it and returns the short count; only a write starting at or
      // past it fails (EFBIG). The kernel splits buffered writes at a page
      // boundary itself, but direct_io writes arrive whole.
      if (offset < store::kMaxBlobLength && data.size() > store::kMaxBlobLength - offset) {
        data = data.substr(0, store::kMaxBlobLength - offset);
      }
      {
        std::optional<uint64_t> epoch;
        UPFS_RETURN_IF_ERROR(m.WriteFile(*h->session, id, h->file, offset, data, writer,
                                         after_reply ? &epoch : nullptr));
        if (epoch) {
          // The work holds the handle, and with it the session: the kernel
          // may release the handle as soon as it has the reply.
          *after_reply = [&m, h, id, offset, data, epoch = *epoch] {
            bool catch_up = false;
            m.FeedAfterReply(*h->file, offset, data, epoch, &catch_up);
            Status ok;
            m.EndWrite(*h->session, id, h->file, offset, &ok, catch_up);
          };
        }
      }
      return data.size();
    case NodeKind::kFinish: {
      MutexLock lock(h->mu);
      if (h->commit_result) {
        return h->commit_result->ok() ? Status::Stale("this .finish handle already ran its commit")
                                      : *h->commit_result;
      }
      Status refused;
      if (offset > kMaxManifestBytes || data.size() > kMaxManifestBytes - offset) {
        refused = Status::TooLarge("manifest larger than " +
                                   std::to_string(kMaxManifestBytes >> 20) + " MiB");
      } else if (offset > h->text.size()) {
        // A manifest is text written in order (rewrites are fine). A write
        // past its end would make a hole of NULs that no manifest holds,
        // and would cost memory for bytes never sent.
        refused = Status::InvalidArgument(
            "a write at offset " + std::to_string(offset) + " of .finish leaves a hole after its " +
            std::to_string(h->text.size()) + " bytes: write the manifest in order");
      }
      if (!refused.ok()) {
        // The manifest this handle holds is not the one the client meant:
        // its close must fail too, never commit what did arrive (or, with
        // nothing written, commit as an empty manifest would).
        h->commit_result = refused.WithContext("nothing committed: a write to .finish failed");
        return refused;
      }
      if (h->text.size() < offset + data.size()) h->text.resize(offset + data.size());
      std::memcpy(h->text.data() + offset, data.data(), data.size());
      return data.size();
    }
    case NodeKind::kStatus:
      return Status::ReadOnly(".status is read-only");
    default:
      return Status::ReadOnly("assets are read-only");
  }
}

Result<std::string> Engine::Read(uint64_t id, uint64_t handle, uint64_t offset, size_t size) {
  std::string out;
  UPFS_RETURN_IF_ERROR(ReadPieces(id, handle, offset, size, [&out](const auto& pieces) {
    for (std::string_view piece : pieces) out.append(piece);
  }));
  return out;
}

Status Engine::ReadPieces(uint64_t id, uint64_t handle, uint64_t offset, size_t size,
                          const ReadReply& reply) {
  Impl& m = *impl_;
  auto h = m.FindHandle(handle);
  if (!h || h->id != id) return Status::InvalidArgument("unknown file handle");
  std::unique_ptr<store::ByteSink> file_blob;
  uint64_t length = 0;
  switch (h->kind) {
    case NodeKind::kFile: {
      MutexLock lock(h->session->mu);
      if (h->session->state == SessionState::kGone) return h->session->CheckOpen();
      if (h->file->removed) return Status::Stale("file was removed");
      file_blob = h->file->Blob();
      length = h->file->length.load();
      break;
    }
    case NodeKind::kStatus: {
      std::string text;
      {
        MutexLock lock(h->mu);
        if (offset < h->text.size()) text = h->text.substr(offset, size);
      }
      reply({text});
      return Status::OK();
    }
    case NodeKind::kFinish:
      return Status::PermissionDenied(".finish is write-only");
    case NodeKind::kAssetFile:
      length = h->asset_length;
      break;
    default:
      return Status::IsDirectory("directory");
  }
  if (offset >= length) {
    reply({});
    return Status::OK();
  }
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, length - offset));
  auto failed = [&](const Status& st) {
    return st.WithContext("read of id " + std::to_string(id) + " at offset " +
                          std::to_string(offset));
  };
  if (h->kind == NodeKind::kAssetFile) {
    AssetReadCache::Pinned pinned;
    Status st = m.asset_reads.Pin(id, h->asset_blob, length, offset, n, &pinned);
    if (!st.ok()) return failed(st);
    reply(pinned.pieces());
    return Status::OK();
  }
  // A file of an open session changes: read into a buffer of this read's
  // own (not zeroed first; ReadAt fills all of it or fails).
  std::unique_ptr<char[]> out = std::make_unique_for_overwrite<char[]>(n);
  if (Status st = file_blob->ReadAt(offset, n, out.get()); !st.ok()) return failed(st);
  reply({std::string_view(out.get(), n)});
  return Status::OK();
}

}  // namespace upfs::session
