// Engine: finishing a session. Its files are verified against the
// manifest (names, completeness, SHA-256) and committed as an asset in one
// synced write; nothing changes unless all of it holds.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "base/free_memory.h"
#include "session/engine.h"
#include "session/engine_impl.h"

namespace upfs::session {

namespace {

// Finishes of sessions with at least this many nodes return freed memory
// to the system afterwards (ReturnFreeMemory).
constexpr size_t kTrimAfterNodes = 1024;

// One node of a session being finished: its path and the index entry it
// becomes, built once and moved into the commit batch (a session of many
// files holds all of these at once, so nothing is kept twice).
struct Planned {
  std::string path;
  std::shared_ptr<FileState> file;  // null for directories
  AssetEntry entry;
};

// Runs the pre_commit program for a verified session (docs/configuration.md,
// "Commit hooks"): OK when it exits 0, NotPermitted with its first line of stderr
// otherwise. The session is kFinishing meanwhile, so its files can be read
// through the mount and not changed.
Status RunPreCommit(const Options& options, const SessionRecord& record,
                    const std::vector<Planned>& plan, uint64_t files, uint64_t bytes,
                    const std::string& where) {
  // The verified manifest, in sha256sum's format, for the program to read.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/upfs-manifest-XXXXXX";
  int fd = mkstemp(path.data());
  if (fd < 0) {
    return Status::IOError(where + ": pre_commit: cannot create the manifest file " + path + ": " +
                           std::strerror(errno));
  }
  std::string text;
  for (const Planned& p : plan) {
    if (!p.entry.is_dir) text += ManifestLineOf(p.entry.sha256, p.path);
  }
  bool written = true;
  for (size_t done = 0; done < text.size() && written;) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) done += static_cast<size_t>(n);
  }
  close(fd);
  if (!written) {
    unlink(path.c_str());
    return Status::IOError(where + ": pre_commit: writing the manifest file " + path + " failed");
  }
  HookEnv env = {
      {"UPFS_HOOK", "pre_commit"},
      {"UPFS_SESSION", record.name},
      {"UPFS_UID", std::to_string(record.uid)},
      {"UPFS_GID", std::to_string(record.gid)},
      {"UPFS_FILES", std::to_string(files)},
      {"UPFS_BYTES", std::to_string(bytes)},
      {"UPFS_MANIFEST", path},
  };
  if (!options.mountpoint.empty()) {
    env.emplace_back("UPFS_MOUNTPOINT", options.mountpoint);
    env.emplace_back("UPFS_SESSION_DIR", options.mountpoint + "/sessions/" + record.name);
  }
  HookRun run = RunHook(options.pre_commit, env, options.hook_timeout_ns, "pre_commit of " + where);
  unlink(path.c_str());
  if (!run.Succeeded()) {
    Status refused =
        Status::NotPermitted(where + ": pre_commit refused the commit: " + options.pre_commit +
                             " " + run.Describe(options.hook_timeout_ns));
    spdlog::warn("{}", refused.message());
    return refused;
  }
  spdlog::info("pre_commit of {}: accepted", where);
  return Status::OK();
}

// Files a commit leaves out (IgnoreRules): their node records and bytes
// go in the commit's batch, so they are freed exactly when it is durable.
struct LeftOut {
  std::vector<std::string> paths;  // sorted, as the plan was
  std::vector<uint64_t> ids;
  std::vector<std::shared_ptr<FileState>> files;
  uint64_t bytes = 0;  // received, freed
};

LeftOut LeaveOut(std::vector<Planned>& left_out, uint64_t session_id, Batch* batch) {
  LeftOut out;
  for (Planned& p : left_out) {
    batch->DeleteNodeRecord(session_id, p.entry.id);
    batch->DeleteBlobData(p.entry.id);
    {
      MutexLock lock(p.file->mu);
      out.bytes += p.file->received.BytesReceived();
    }
    out.ids.push_back(p.entry.id);
    out.files.push_back(std::move(p.file));
    out.paths.push_back(std::move(p.path));
  }
  return out;
}

// The value of kLeftOutXattr: one path per line (a backslash in a name
// doubled, a newline written as backslash-n); past what one xattr can
// return, a last line "... (N more, see the log)".
std::string LeftOutXattrValue(const std::vector<std::string>& paths) {
  constexpr size_t kLimit = 60 * 1024;  // under the kernel's 64 KiB for one value
  std::string value;
  for (size_t i = 0; i < paths.size(); ++i) {
    std::string line;
    for (char c : paths[i]) {
      if (c == '\\') {
        line += "\\\\";
      } else if (c == '\n') {
        line += "\\n";
      } else {
        line.push_back(c);
      }
    }
    line.push_back('\n');
    if (value.size() + line.size() > kLimit) {
      value += "... (" + std::to_string(paths.size() - i) + " more, see the log)\n";
      break;
    }
    value += line;
  }
  return value;
}

// The paths for the commit's log line: the first 100, quoted.
std::string LeftOutLogText(const std::vector<std::string>& paths) {
  constexpr size_t kLogged = 100;  // docs/configuration.md: "the first 100"
  std::string text;
  for (size_t i = 0; i < paths.size() && i < kLogged; ++i) {
    if (i) text += ", ";
    text += Quote(paths[i]);
  }
  if (paths.size() > kLogged) text += " ... (" + std::to_string(paths.size() - kLogged) + " more)";
  return text;
}

}  // namespace

// After a failed commit: the store may have lost bytes it had acknowledged
// (and dropped their records: KvStore::Apply), so each file's received
// ranges are read back from the store, as at a start (recovery.cc). A file
// that lost some shows them missing in .status and in the next finish,
// and its hash is recomputed from the store once they are sent again.
void Engine::Impl::ForgetLostBytes(const std::vector<std::shared_ptr<FileState>>& files,
                                   const std::string& where) {
  for (const std::shared_ptr<FileState>& file : files) {
    FileState& f = *file;
    MutexLock lock(f.mu);
    Result<ExtentMap> stored = f.StoredRanges();
    if (!stored.ok()) {
      spdlog::warn("{}: reading back what the store holds of blob {} failed: {}", where, f.blob,
                   stored.status().ToString());
      continue;
    }
    ExtentMap now = std::move(*stored);
    // The store only ever drops ranges here, so equal counts are equal maps.
    if (now.BytesReceived() == f.received.BytesReceived()) continue;
    const std::vector<Extent> lost = f.received.Minus(now);
    f.received = std::move(now);
    f.hash.Invalidate();
    if (!lost.empty()) {
      f.SetError("the store lost bytes " + RangeText(lost[0].begin, lost[0].end) +
                 " after acknowledging them: send them again");
      spdlog::warn("{}: blob {}: {}", where, f.blob, *f.last_error);
    }
  }
}

Status Engine::Impl::FinishSession(const std::shared_ptr<Session>& sp,
                                   std::string_view manifest_text, CommitInfo* info) {
  Session& s = *sp;
  // Every finish is timed and counted (metrics), a refused one too.
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed_ns = [start] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                start)
        .count();
  };
  std::string name;
  size_t files = 0;
  size_t nodes = 0;
  {
    MutexLock lock(s.mu);
    name = s.record.name;
    if (Status open = s.CheckOpen(); !open.ok()) {
      counters.Finished(open, 0, elapsed_ns());
      return open;
    }
    for (const auto& [id, n] : s.nodes) files += n.is_dir ? 0 : 1;
    s.state = SessionState::kFinishing;
    while (s.writes_in_flight != 0) s.writes_done.Wait(s.mu);
    nodes = s.nodes.size();
  }
  // The tree cannot change while kFinishing, so `files` stays true. At
  // most files + 1 lines are parsed: memory stays that of the text
  // however many lines a wrong manifest has (ParseManifest).
  auto parsed = ParseManifest(manifest_text, files + 1);
  uint64_t bytes = 0;
  Status st = parsed.ok() ? VerifyAndCommit(sp, std::move(*parsed), info, &bytes)
                          : parsed.status().WithContext("session " + Quote(name));
  {
    MutexLock lock(s.mu);
    if (!st.ok()) {
      s.state = SessionState::kOpen;
      s.last_error = st.message();
      s.last_activity_ns = Now();
    }
  }
  counters.Finished(st, bytes, elapsed_ns());
  // A finish of many files briefly holds a few KiB per file (the plan,
  // the batch, its encoding); the allocator would keep the freed pages
  // and RSS would stay at the peak (docs/performance.md, "Scale and
  // memory"). Not after small finishes: it walks the allocator's lists.
  if (nodes >= kTrimAfterNodes) upfs::ReturnFreeMemory();
  return st;
}

// Takes the manifest to free it (and the lookups built on it) before the
// commit batch is built: a finish of many files holds all of these.
Status Engine::Impl::VerifyAndCommit(const std::shared_ptr<Session>& sp,
                                     std::vector<ManifestLine> manifest, CommitInfo* info,
                                     uint64_t* committed_bytes) {
  Session& s = *sp;
  SessionRecord record;
  uint64_t root_subdirs = 0;
  std::vector<Planned> plan;
  {
    // The session is kFinishing: no write, create, rename or delete runs
    // until it is open again or gone, so this snapshot stays true.
    MutexLock lock(s.mu);
    record = s.record;
    root_subdirs = s.root_subdirs;
    plan.reserve(s.nodes.size());
    for (const auto& [id, n] : s.nodes) {
      Planned& p = plan.emplace_back();
      p.path = s.PathOf(id);
      p.file = n.file;
      AssetEntry& e = p.entry;
      e.asset = record.name;
      size_t slash = p.path.rfind('/');
      e.dir = slash == std::string::npos ? "" : p.path.substr(0, slash);
      e.name = n.name;
      e.id = id;
      e.is_dir = n.is_dir;
      e.mode = n.mode;
      e.uid = n.uid;
      e.gid = n.gid;
      e.atime_ns = n.atime_ns;
      e.mtime_ns = n.dir_mtime_ns;  // files: set once verified
      e.ctime_ns = n.dir_ctime_ns;
      e.subdirs = n.subdirs;
      e.xattrs = n.xattrs;
    }
  }
  std::sort(plan.begin(), plan.end(),
            [](const Planned& a, const Planned& b) { return a.path < b.path; });
  const std::string where = "session " + Quote(record.name);

  // 1. The manifest names exactly the session's files, once each.
  std::unordered_map<std::string_view, Planned*> by_path;
  for (Planned& p : plan) by_path.emplace(p.path, &p);
  std::unordered_map<std::string_view, const ManifestLine*> listed;
  for (const ManifestLine& line : manifest) {
    auto it = by_path.find(line.path);
    if (it == by_path.end()) {
      return Status::InvalidArgument(where + ": manifest line " + std::to_string(line.line_number) +
                                     " names " + Quote(line.path) +
                                     ", which is not a file of the session");
    }
    if (it->second->entry.is_dir) {
      return Status::InvalidArgument(where + ": manifest line " + std::to_string(line.line_number) +
                                     " names directory " + Quote(line.path));
    }
    if (!listed.emplace(line.path, &line)
             .second) {  // keys view the manifest: the plan's entries move
      return Status::InvalidArgument(where + ": manifest line " + std::to_string(line.line_number) +
                                     " lists " + Quote(line.path) + " a second time");
    }
  }
  // A file the manifest does not list is left out if it matches an
  // ignore pattern (a tool's leftover), and fails the finish otherwise;
  // an empty manifest lists none. A listed file is always committed.
  std::vector<Planned> left_out;
  for (Planned& p : plan) {
    if (p.entry.is_dir || listed.count(p.path)) continue;
    if (ignore.Match(p.path)) {
      left_out.push_back(std::move(p));
      p.path.clear();  // moved out: erased below
    } else if (!manifest.empty()) {
      return Status::InvalidArgument(where + ": file " + Quote(p.path) +
                                     " is not listed in the manifest");
    }
  }
  by_path = {};  // its keys view the plan's paths, which move now
  if (!left_out.empty()) std::erase_if(plan, [](const Planned& p) { return p.path.empty(); });

  // 2. Every file complete; 3. every hash right.
  uint64_t files = 0, bytes = 0;
  for (Planned& p : plan) {
    if (p.entry.is_dir) continue;
    FileState& f = *p.file;
    MutexLock lock(f.mu);
    uint64_t length = f.length.load();
    std::vector<Extent> missing = f.received.Missing(length);
    if (!missing.empty()) {
      uint64_t total = 0;
      for (const Extent& e : missing) total += e.end - e.begin;
      f.SetError("missing bytes " + RangeText(missing[0].begin, missing[0].end) + " of " +
                 std::to_string(length) +
                 (missing.size() > 1 ? " (" + std::to_string(missing.size()) + " ranges, " +
                                           std::to_string(total) + " bytes missing)"
                                     : ""));
      return Status::MissingData(where + " file " + Quote(p.path) + ": " + *f.last_error);
    }
    auto hash = FullHash(f);
    if (!hash.ok()) {
      f.SetError(hash.status().message());
      return hash.status().WithContext(where + " file " + Quote(p.path));
    }
    p.entry.sha256 = std::move(*hash);
    auto line = listed.find(p.path);
    if (line != listed.end() && line->second->sha256 != p.entry.sha256) {
      f.SetError("manifest line " + std::to_string(line->second->line_number) + " expects sha256 " +
                 line->second->sha256 + ", received bytes hash to " + p.entry.sha256);
      return Status::HashMismatch(where + " file " + Quote(p.path) + ": " + *f.last_error);
    }
    f.last_error.reset();
    p.entry.mtime_ns = f.mtime_ns.load();
    p.entry.ctime_ns = f.ctime_ns.load();
    p.entry.length = length;
    ++files;
    bytes += length;
  }

  listed = {};
  manifest = {};

  if (!options.pre_commit.empty()) {
    Status accepted = RunPreCommit(options, record, plan, files, bytes, where);
    counters.PreCommitRan(!accepted.ok());
    UPFS_RETURN_IF_ERROR(accepted);
  }

  // 4. One atomic, synced write: the asset and its entries in, the
  //    session's records out. The blobs stay where they are.
  int64_t now = Now();
  Batch batch;
  LeftOut dropped = LeaveOut(left_out, record.id, &batch);
  left_out = {};
  AssetRecord asset;
  asset.name = record.name;
  asset.root_id = record.id;
  asset.uid = record.uid;
  asset.gid = record.gid;
  asset.mode = record.mode;
  asset.atime_ns = record.atime_ns;
  asset.mtime_ns = record.mtime_ns;
  asset.ctime_ns = record.ctime_ns;
  asset.subdirs = root_subdirs;
  asset.committed_ns = now;
  asset.files = files;
  asset.bytes = bytes;
  asset.xattrs = record.xattrs;
  asset.xattrs.erase(std::string(kLeftOutXattr));
  if (!dropped.paths.empty())
    asset.xattrs[std::string(kLeftOutXattr)] = LeftOutXattrValue(dropped.paths);
  batch.Put(asset);
  std::vector<uint64_t> ids;
  ids.reserve(plan.size());
  std::vector<std::shared_ptr<FileState>> files_in_commit;
  for (Planned& p : plan) {
    if (p.file) files_in_commit.push_back(p.file);
    ids.push_back(p.entry.id);
    batch.Put(std::move(p.entry));
    batch.DeleteNodeRecord(record.id, ids.back());
  }
  plan = {};  // the entries live in the batch now
  // Files unlinked while open are not part of the asset; their bytes go
  // with the session. (No handle can write them while kFinishing; a
  // release may free one meanwhile, and a second delete is harmless.)
  std::vector<uint64_t> unlinked_ids;
  {
    MutexLock lock(s.mu);
    for (const auto& [id, n] : s.unlinked) unlinked_ids.push_back(id);
  }
  for (uint64_t id : unlinked_ids) batch.DeleteBlobData(id);
  batch.Delete(record);
  // The post_commit program's notice, durable with the commit.
  if (notifier) batch.AddNotice(record.name);
  Status st = store->Apply(batch, /*sync=*/true);
  if (!st.ok()) {
    spdlog::error("{}: commit failed, session left open: {}", where, st.ToString());
    ForgetLostBytes(files_in_commit, where);
    return st.WithContext(where + ": commit");
  }

  // Committed and durable. Retire the session from memory.
  ++asset_count;
  sessions_dir_ns = now;
  assets_dir_ns = now;
  {
    MutexLock table(table_mu);
    sessions.erase(record.name);
    MutexLock lock(s.mu);
    s.state = SessionState::kGone;
    Uncount(s);
    for (auto& [id, n] : s.unlinked) {
      MutexLock flock(n.file->mu);
      n.file->removed = true;
      unlinked_ids.push_back(id);
    }
    s.unlinked.clear();
  }
  for (uint64_t id : ids) IndexRemove(id);
  for (uint64_t id : unlinked_ids) IndexRemove(id);
  quota.GiveBack(record.uid);  // outside the table's lock: it may ask the store
  for (const std::shared_ptr<FileState>& f : dropped.files) {
    MutexLock flock(f->mu);
    f->removed = true;  // a handle still open on it sees Stale, as on any file of the session
  }
  for (uint64_t id : dropped.ids) IndexRemove(id);
  IndexRemove(record.id);
  IndexRemove(record.id + kFinishOffset);
  IndexRemove(record.id + kStatusOffset);
  if (dropped.paths.empty()) {
    spdlog::info("{} committed: {} files, {} bytes", where, files, bytes);
  } else {
    spdlog::info(
        "{} committed: {} files, {} bytes; left out {} files matching -o ignore, not in the "
        "manifest "
        "(their {} bytes freed; {} on the asset lists them): {}",
        where, files, bytes, dropped.paths.size(), dropped.bytes, kLeftOutXattr,
        LeftOutLogText(dropped.paths));
  }
  *committed_bytes = bytes;
  if (notifier) notifier->Enqueue(record.name);
  if (info) {
    info->name = record.name;
    info->session_id = record.id;
  }
  return Status::OK();
}

Status Engine::Finish(std::string_view name, std::string_view manifest, CommitInfo* committed) {
  auto s = impl_->FindSession(name);
  if (!s) return Status::NotFound("no open session " + Quote(name));
  return impl_->FinishSession(s, manifest, committed);
}

}  // namespace upfs::session
