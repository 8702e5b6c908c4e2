#include "store/blob_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include <spdlog/spdlog.h>

namespace upfs::store {
namespace {

// Writes at least this large start their writeback at once.
constexpr size_t kEarlyWritebackBytes = size_t{64} << 10;

std::string ErrnoText(int err) { return std::strerror(err); }

Status FromErrno(int err, const std::string& what) {
  std::string msg = what + ": " + ErrnoText(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(msg);
    case EFBIG:
      return Status::TooLarge(msg);
    default:
      return Status::IOError(msg);
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// fdatasync (fsync for a directory) of the file at `path`. NotFound when
// it no longer exists.
Status SyncPath(const std::string& path, bool directory) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (raw < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " is gone");
    return FromErrno(errno, "opening " + path + " to sync it");
  }
  Fd fd(raw);
  if ((directory ? ::fsync(fd.get()) : ::fdatasync(fd.get())) != 0)
    return FromErrno(errno, "syncing " + path);
  return Status::OK();
}

// Calls `piece(segment, offset in segment, offset in the request, length)`
// for each part of [offset, offset + n) that lies in one segment.
template <typename F>
Status ForEachSegment(uint64_t offset, uint64_t n, F piece) {
  uint64_t done = 0;
  while (done < n) {
    const uint64_t at = offset + done;
    const uint64_t segment = at / DirBlobFiles::kSegmentBytes;
    const uint64_t within = at % DirBlobFiles::kSegmentBytes;
    const uint64_t len = std::min(n - done, DirBlobFiles::kSegmentBytes - within);
    UPFS_RETURN_IF_ERROR(piece(segment, within, done, len));
    done += len;
  }
  return Status::OK();
}

}  // namespace

// ---- LostRanges ----

void LostRanges::Add(uint64_t blob, Extent range) {
  MutexLock lock(mu_);
  ranges_[blob].push_back(range);
}

std::vector<Extent> LostRanges::Take(uint64_t blob) {
  MutexLock lock(mu_);
  auto it = ranges_.find(blob);
  if (it == ranges_.end()) return {};
  std::vector<Extent> taken = std::move(it->second);
  ranges_.erase(it);
  return taken;
}

void LostRanges::Restore(uint64_t blob, std::vector<Extent> ranges) {
  if (ranges.empty()) return;
  MutexLock lock(mu_);
  std::vector<Extent>& kept = ranges_[blob];
  kept.insert(kept.end(), ranges.begin(), ranges.end());
}

std::vector<uint64_t> LostRanges::Blobs() const {
  MutexLock lock(mu_);
  std::vector<uint64_t> blobs;
  for (const auto& [blob, ranges] : ranges_) blobs.push_back(blob);
  return blobs;
}

void LostRanges::ForgetPast(uint64_t blob, uint64_t length) {
  MutexLock lock(mu_);
  auto it = ranges_.find(blob);
  if (it == ranges_.end()) return;
  std::vector<Extent>& ranges = it->second;
  std::erase_if(ranges, [&](const Extent& e) { return e.begin >= length; });
  for (Extent& e : ranges) e.end = std::min(e.end, length);
  if (ranges.empty()) ranges_.erase(it);
}

// ---- DirBlobFiles ----

Result<std::unique_ptr<DirBlobFiles>> DirBlobFiles::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("creating " + dir + ": " + ec.message());
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FromErrno(errno, "opening " + dir);
  // Whether the file system frees a range of a file: tried on a file of
  // its own.
  bool can_punch = false;
  const std::string probe = dir + "/.punch-probe";
  if (int p = ::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); p >= 0) {
    can_punch = ::ftruncate(p, 8192) == 0 &&
                ::fallocate(p, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0;
    ::close(p);
    ::unlink(probe.c_str());
  }
  if (!can_punch) {
    spdlog::info("{}: the file system cannot free a range of a file; small files stay inline", dir);
  }
  return std::unique_ptr<DirBlobFiles>(new DirBlobFiles(dir, fd, can_punch));
}

DirBlobFiles::DirBlobFiles(std::string dir, int dir_fd, bool can_punch)
    : dir_(std::move(dir)),
      dir_fd_(dir_fd),
      can_punch_(can_punch),
      syncer_([this] { SyncLoop(); }) {}

DirBlobFiles::~DirBlobFiles() {
  {
    MutexLock lock(dirty_mu_);
    stopping_ = true;
  }
  sync_cv_.SignalAll();
  syncer_.join();
  ::close(dir_fd_);
}

void DirBlobFiles::SyncLoop() {
  MutexLock lock(dirty_mu_);
  for (;;) {
    while (!stopping_ && to_sync_.empty() && to_start_.empty()) sync_cv_.Wait(dirty_mu_);
    if (stopping_) return;
    std::vector<std::string> paths, starts;
    paths.swap(to_sync_);
    starts.swap(to_start_);
    background_busy_ = true;
    lock.Unlock();
    // The writeback of a pack (or of a blob written in small writes),
    // started off the request path: it submits up to kBackgroundSyncBytes
    // of I/O, which on a virtual disk took 8 % of the daemon's time in
    // requests that waited for it. Through the file kept open for its
    // writes. Only starts it (no error to report: a failure surfaces at
    // the next Sync's fdatasync).
    for (const std::string& path : starts) {
      if (Result<std::shared_ptr<const int>> fd = OpenFile(path, /*create=*/false); fd.ok()) {
        ::sync_file_range(**fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        ++background_writebacks_;
      }
    }
    // Early durability. A failure here is the one Linux reports (the next
    // fdatasync of the file returns 0), so it is kept: the bytes are lost
    // for the blob's next commit, and the next Sync fails.
    std::vector<std::pair<std::string, Status>> failed;
    for (const std::string& path : paths) {
      if (Status st = SyncFile(path); !st.ok() && !st.IsNotFound())
        failed.emplace_back(path, std::move(st));
      ++background_syncs_;
    }
    lock.Lock();
    for (auto& [path, st] : failed) {
      spdlog::error("syncing {} in the background failed; its unsynced bytes count as lost: {}",
                    path, st.ToString());
      ++background_sync_failures_;
      NoteLost(path);
      if (background_failed_.ok()) background_failed_ = std::move(st);
    }
    background_busy_ = false;
    sync_cv_.SignalAll();
  }
}

Status DirBlobFiles::SyncFile(const std::string& path) const {
  if (fail_syncs_for_test_) return Status::IOError("syncing " + path + ": injected failure (test)");
  return SyncPath(path, /*directory=*/false);
}

void DirBlobFiles::NoteLost(const std::string& path) {
  // <dir>/<group>/<16 hex digits>[.<segment, hex>]
  const std::string name = path.substr(path.rfind('/') + 1);
  uint64_t blob = 0, segment = 0;
  if (name.size() < 16 ||
      std::from_chars(name.data(), name.data() + 16, blob, 16).ptr != name.data() + 16)
    return;
  if (name.size() > 17 && name[16] == '.')
    std::from_chars(name.data() + 17, name.data() + name.size(), segment, 16);
  const uint64_t begin = segment * kSegmentBytes;
  lost_.Add(blob, {begin, std::min(begin + kSegmentBytes, kMaxBlobLength)});
}

std::vector<Extent> DirBlobFiles::TakeLost(uint64_t blob) { return lost_.Take(blob); }

void DirBlobFiles::RestoreLost(uint64_t blob, std::vector<Extent> lost) {
  lost_.Restore(blob, std::move(lost));
}

std::vector<uint64_t> DirBlobFiles::BlobsWithLost() { return lost_.Blobs(); }

std::string DirBlobFiles::PathOf(uint64_t blob, uint64_t segment) const {
  char name[80];
  const auto group = static_cast<unsigned long long>(blob / kBlobsPerDirectory);
  if (segment == 0) {
    std::snprintf(name, sizeof name, "/%llx/%016llx", group, static_cast<unsigned long long>(blob));
  } else {
    std::snprintf(name, sizeof name, "/%llx/%016llx.%llx", group,
                  static_cast<unsigned long long>(blob), static_cast<unsigned long long>(segment));
  }
  return dir_ + name;
}

void DirBlobFiles::MarkDirty(const std::string& path, bool new_entry, uint64_t bytes,
                             bool background_sync) {
  {
    MutexLock lock(dirty_mu_);
    if (dirty_files_.insert(path).second && new_entry)
      dirty_dirs_.insert(path.substr(0, path.rfind('/')));
    uint64_t& unsynced = unsynced_bytes_[path];
    unsynced += bytes;
    if (unsynced < kBackgroundSyncBytes) return;
    unsynced = 0;
    (background_sync ? to_sync_ : to_start_).push_back(path);
  }
  sync_cv_.Signal();
}

Result<std::shared_ptr<const int>> DirBlobFiles::OpenFile(const std::string& path, bool create,
                                                          bool* made_dir) const {
  MutexLock lock(open_mu_);
  for (auto it = open_files_.begin(); it != open_files_.end(); ++it) {
    if (it->first != path) continue;
    open_files_.splice(open_files_.begin(), open_files_, it);
    return it->second;
  }
  // Opened under the lock, so that Truncate cannot remove the file between
  // this open and its entry.
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  // One open, creating the file if need be; its directory is then synced
  // with it (MarkDirty: whether or not this open created it, which is
  // cheaper than a failed open before each creating one).
  int raw = ::open(path.c_str(), flags, 0600);
  if (raw < 0 && errno == ENOENT && create) {
    // The first blob of its directory: make the directory, then the file.
    const std::string sub = path.substr(0, path.rfind('/'));
    if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST)
      return FromErrno(errno, "creating " + sub);
    if (made_dir != nullptr) *made_dir = true;
    raw = ::open(path.c_str(), flags, 0600);
  }
  if (raw < 0 && errno == ENOENT) return Status::NotFound(path + " does not exist");
  if (raw < 0) return FromErrno(errno, "opening " + path);
  std::shared_ptr<const int> fd(new int(raw), [](const int* p) {
    ::close(*p);
    delete p;
  });
  open_files_.emplace_front(path, fd);
  if (open_files_.size() > kOpenFiles) open_files_.pop_back();
  return fd;
}

Status DirBlobFiles::Write(uint64_t blob, uint64_t offset, std::string_view data) {
  return WriteFile(blob, offset, data, /*pack=*/false);
}

Status DirBlobFiles::WritePack(uint64_t pack, uint64_t offset, std::string_view data) {
  return WriteFile(pack, offset, data, /*pack=*/true);
}

Status DirBlobFiles::WriteFile(uint64_t blob, uint64_t offset, std::string_view data, bool pack) {
  return ForEachSegment(
      offset, data.size(), [&](uint64_t segment, uint64_t at, uint64_t from, uint64_t len) {
        const std::string path = PathOf(blob, segment);
        bool made_dir = false;
        UPFS_ASSIGN_OR_RETURN(std::shared_ptr<const int> fd,
                              OpenFile(path, /*create=*/true, &made_dir));
        if (made_dir) {
          // The first blob of its directory: the new directory's entry is
          // synced with the top directory.
          MutexLock lock(dirty_mu_);
          dirty_dirs_.insert(dir_);
        }
        for (uint64_t done = 0; done < len;) {
          ssize_t n =
              ::pwrite(*fd, data.data() + from + done, len - done, static_cast<off_t>(at + done));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0)
            return FromErrno(errno, "writing " + std::to_string(len) + " bytes at " +
                                        std::to_string(at) + " of " + path);
          done += static_cast<uint64_t>(n);
        }
        // A blob's large writes start their writeback at once, and its
        // file is synced in the background every kBackgroundSyncBytes.
        // Small writes and a pack's (many small files' chunks; a 64 KiB
        // file's is as large as kEarlyWritebackBytes) only have the
        // writeback of the whole file started in the background every
        // kBackgroundSyncBytes: an fdatasync of a file being appended to
        // by every writer slowed `cp -r` of small files by a third, and a
        // writeback started per write took 8 % of the daemon's time for
        // 64 KiB files (docs/performance.md); the commit's fdatasync finds
        // those pages on their way anyway. sync_file_range only starts
        // writeback; failures surface at Sync.
        const bool early = !pack && len >= kEarlyWritebackBytes;
        if (early) {
          ::sync_file_range(*fd, static_cast<off_t>(at), static_cast<off_t>(len),
                            SYNC_FILE_RANGE_WRITE);
        }
        MarkDirty(path, /*new_entry=*/true, len, /*background_sync=*/early);
        return Status::OK();
      });
}

Status DirBlobFiles::Read(uint64_t blob, uint64_t offset, size_t n, char* out,
                          size_t* present) const {
  *present = 0;
  bool ended = false;  // a segment ended before its part did: the rest is past the blob's end
  return ForEachSegment(offset, n, [&](uint64_t segment, uint64_t at, uint64_t from, uint64_t len) {
    char* dst = out + from;
    if (ended) {
      std::memset(dst, 0, len);
      return Status::OK();
    }
    const std::string path = PathOf(blob, segment);
    Result<std::shared_ptr<const int>> fd = OpenFile(path, /*create=*/false);
    if (fd.status().IsNotFound()) {
      std::memset(dst, 0, len);
      ended = true;
      return Status::OK();
    }
    UPFS_RETURN_IF_ERROR(fd.status());
    uint64_t done = 0;
    while (done < len) {
      ssize_t got = ::pread(**fd, dst + done, len - done, static_cast<off_t>(at + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0)
        return FromErrno(errno, "reading " + std::to_string(len) + " bytes at " +
                                    std::to_string(at) + " of " + path);
      if (got == 0) break;
      done += static_cast<uint64_t>(got);
    }
    std::memset(dst + done, 0, len - done);
    *present = from + done;
    if (done < len) ended = true;
    return Status::OK();
  });
}

Status DirBlobFiles::Truncate(uint64_t blob, uint64_t length, uint64_t end) {
  lost_.ForgetPast(blob, length);
  if (end <= length) return Status::OK();
  const uint64_t first = length / kSegmentBytes;
  const uint64_t last = (end - 1) / kSegmentBytes;
  for (uint64_t segment = first; segment <= last; ++segment) {
    const std::string path = PathOf(blob, segment);
    const uint64_t keep = segment == first ? length % kSegmentBytes : 0;
    int rc;
    if (keep > 0) {
      rc = ::truncate(path.c_str(), static_cast<off_t>(keep));
    } else {
      MutexLock lock(open_mu_);
      open_files_.remove_if([&](const auto& entry) { return entry.first == path; });
      rc = ::unlink(path.c_str());
    }
    if (rc != 0 && errno != ENOENT) {
      return FromErrno(errno, (keep > 0 ? "truncating " : "removing ") + path);
    }
    if (rc == 0 && keep > 0) MarkDirty(path, false, 0);
  }
  return Status::OK();
}

Status DirBlobFiles::Punch(uint64_t blob, uint64_t offset, uint64_t length) {
  return ForEachSegment(offset, length, [&](uint64_t segment, uint64_t at, uint64_t, uint64_t len) {
    const std::string path = PathOf(blob, segment);
    Result<std::shared_ptr<const int>> fd = OpenFile(path, /*create=*/false);
    if (fd.status().IsNotFound()) return Status::OK();
    UPFS_RETURN_IF_ERROR(fd.status());
    if (::fallocate(**fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(at),
                    static_cast<off_t>(len)) != 0) {
      return FromErrno(errno, "freeing " + std::to_string(len) + " bytes at " + std::to_string(at) +
                                  " of " + path);
    }
    MarkDirty(path, false, 0);
    return Status::OK();
  });
}

Result<uint64_t> DirBlobFiles::StoredBytes(uint64_t blob) const {
  // Packs, the only callers, fit their first segment.
  const std::string path = PathOf(blob, 0);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return FromErrno(errno, "examining " + path);
  }
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Status DirBlobFiles::Sync() {
  std::set<std::string> files, dirs;
  Status result;
  {
    // After the background syncer's paths: a failure it meets must be
    // seen here, since the file's next fdatasync will not report it.
    MutexLock lock(dirty_mu_);
    while (background_busy_) sync_cv_.Wait(dirty_mu_);
    files.swap(dirty_files_);
    dirs.swap(dirty_dirs_);
    unsynced_bytes_.clear();
    result = std::exchange(background_failed_, Status::OK());
  }
  auto fail = [&](Status st) {
    if (result.ok()) result = std::move(st);
  };
  std::vector<std::string> lost_files;
  if (files.size() > kMaxFilesPerSync) {
    if (fail_syncs_for_test_ || ::syncfs(dir_fd_) != 0) {
      fail(fail_syncs_for_test_
               ? Status::IOError("syncing the file system of " + dir_ + ": injected failure (test)")
               : FromErrno(errno, "syncing the file system of " + dir_));
      lost_files.assign(files.begin(), files.end());
    }
  } else {
    for (const std::string& path : files) {
      // A file removed since has nothing left to keep.
      if (Status st = SyncFile(path); !st.ok() && !st.IsNotFound()) {
        lost_files.push_back(path);
        fail(std::move(st));
      }
    }
  }
  for (const std::string& path : dirs) {
    if (Status st = SyncPath(path, /*directory=*/true); !st.ok()) fail(std::move(st));
  }
  MutexLock lock(dirty_mu_);
  // A file that failed is not tried again (Linux would report success);
  // its segment is lost instead. A directory is: its entries are in it.
  for (const std::string& path : lost_files) NoteLost(path);
  if (!result.ok()) dirty_dirs_.insert(dirs.begin(), dirs.end());
  return result;
}

Status DirBlobFiles::List(std::map<uint64_t, uint64_t>* bytes) const {
  bytes->clear();
  std::error_code ec;
  for (const auto& sub : std::filesystem::directory_iterator(dir_, ec)) {
    if (!sub.is_directory()) continue;
    for (const auto& file : std::filesystem::directory_iterator(sub.path(), ec)) {
      const std::string name = file.path().filename().string();
      // <16 hex digits>[.<segment>]; anything else is not a blob file.
      if (name.size() < 16 || (name.size() > 16 && name[16] != '.')) continue;
      uint64_t id = 0;
      auto [end, err] = std::from_chars(name.data(), name.data() + 16, id, 16);
      if (err != std::errc() || end != name.data() + 16) continue;
      struct stat st;
      if (::stat(file.path().c_str(), &st) != 0) continue;
      (*bytes)[id] += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    if (ec) break;
  }
  if (ec) return Status::IOError("listing " + dir_ + ": " + ec.message());
  return Status::OK();
}

// ---- MemoryBlobFiles ----

void MemoryBlobFiles::WriteInto(Blob* b, uint64_t offset, std::string_view data) {
  for (uint64_t done = 0; done < data.size();) {
    const uint64_t at = offset + done;
    std::string& page = b->pages[at / kPage];
    if (page.empty()) page.assign(kPage, '\0');
    const uint64_t within = at % kPage;
    const uint64_t len = std::min<uint64_t>(data.size() - done, kPage - within);
    std::memcpy(page.data() + within, data.data() + done, len);
    done += len;
  }
  b->length = std::max(b->length, offset + data.size());
}

Status MemoryBlobFiles::Write(uint64_t blob, uint64_t offset, std::string_view data) {
  MutexLock lock(mu_);
  WriteInto(&current_[blob], offset, data);
  return Status::OK();
}

Status MemoryBlobFiles::Read(uint64_t blob, uint64_t offset, size_t n, char* out,
                             size_t* present) const {
  MutexLock lock(mu_);
  std::memset(out, 0, n);
  *present = 0;
  auto it = current_.find(blob);
  if (it == current_.end()) return Status::OK();
  const Blob& b = it->second;
  if (offset >= b.length) return Status::OK();
  *present = static_cast<size_t>(std::min<uint64_t>(n, b.length - offset));
  for (uint64_t done = 0; done < *present;) {
    const uint64_t at = offset + done;
    const uint64_t within = at % kPage;
    const uint64_t len = std::min<uint64_t>(*present - done, kPage - within);
    if (auto page = b.pages.find(at / kPage); page != b.pages.end()) {
      std::memcpy(out + done, page->second.data() + within, len);
    }
    done += len;
  }
  return Status::OK();
}

Status MemoryBlobFiles::Truncate(uint64_t blob, uint64_t length, uint64_t /*end*/) {
  MutexLock lock(mu_);
  auto it = current_.find(blob);
  if (it == current_.end()) return Status::OK();
  Blob& b = it->second;
  if (length == 0) {
    current_.erase(it);
    return Status::OK();
  }
  if (length >= b.length) return Status::OK();
  b.pages.erase(b.pages.upper_bound(length / kPage), b.pages.end());
  if (auto last = b.pages.find(length / kPage); last != b.pages.end()) {
    std::fill(last->second.begin() + static_cast<ptrdiff_t>(length % kPage), last->second.end(),
              '\0');
  }
  b.length = length;
  return Status::OK();
}

Status MemoryBlobFiles::Punch(uint64_t blob, uint64_t offset, uint64_t length) {
  MutexLock lock(mu_);
  auto it = current_.find(blob);
  if (it == current_.end()) return Status::OK();
  Blob& b = it->second;
  for (uint64_t at = offset; at < offset + length;) {
    const uint64_t within = at % kPage;
    const uint64_t len = std::min<uint64_t>(offset + length - at, kPage - within);
    if (auto page = b.pages.find(at / kPage); page != b.pages.end()) {
      std::fill_n(page->second.begin() + static_cast<ptrdiff_t>(within), len, '\0');
      if (page->second.find_first_not_of('\0') == std::string::npos) b.pages.erase(page);
    }
    at += len;
  }
  return Status::OK();
}

Result<uint64_t> MemoryBlobFiles::StoredBytes(uint64_t blob) const {
  MutexLock lock(mu_);
  auto it = current_.find(blob);
  return it == current_.end() ? uint64_t{0} : it->second.pages.size() * kPage;
}

Status MemoryBlobFiles::Sync() {
  MutexLock lock(mu_);
  synced_ = current_;
  return Status::OK();
}

Status MemoryBlobFiles::List(std::map<uint64_t, uint64_t>* bytes) const {
  MutexLock lock(mu_);
  bytes->clear();
  for (const auto& [id, b] : current_) (*bytes)[id] = b.pages.size() * kPage;
  return Status::OK();
}

void MemoryBlobFiles::DropUnsynced() {
  MutexLock lock(mu_);
  current_ = synced_;
}

size_t MemoryBlobFiles::ApproximateBytes() const {
  MutexLock lock(mu_);
  size_t total = 0;
  for (const auto& [id, b] : current_) total += b.pages.size() * kPage;
  return total;
}

void MemoryBlobFiles::Damage(uint64_t blob, uint64_t offset, std::string_view bytes) {
  MutexLock lock(mu_);
  WriteInto(&current_[blob], offset, bytes);
}

}  // namespace upfs::store
