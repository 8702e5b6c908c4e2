// BlobFiles: where KvStore keeps the bytes of blobs. The Kv holds only
// the records, the extent records included (which byte ranges of a blob
// were written, and the XXH3 of each); the bytes themselves live here, at
// their own offsets, so each uploaded byte is written once, with no
// key-value store copying, logging or compacting it.
//
// Implementations: DirBlobFiles (a directory of sparse files, the
// daemon's) and MemoryBlobFiles (for tests, which can also drop what was
// not synced, like a machine crash). RadosBlobFiles (store/rados_blob_files.h)
// stripes a blob over RADOS objects.
//
// Thread safety: any method may be called from any thread; concurrent
// writes to the same blob's same bytes are the caller's to order (KvStore
// locks each blob while it writes).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "base/status.h"
#include "store/store.h"

namespace upfs::store {

class BlobFiles {
 public:
  virtual ~BlobFiles() = default;

  // Stores `data` at `offset` of blob `blob`, replacing what was there.
  // Not durable until Sync. NoSpace when the medium is full.
  virtual Status Write(uint64_t blob, uint64_t offset, std::string_view data) = 0;
  // As Write, into a pack (KvStore: a blob that every writer appends small
  // files' chunks to, each write one file's). Implementations may make a
  // pack durable on another schedule than a file's own blob.
  virtual Status WritePack(uint64_t pack, uint64_t offset, std::string_view data) {
    return Write(pack, offset, data);
  }

  // Fills out[0, n) with the blob's bytes at [offset, offset + n). Sets
  // *present to how many of them lie below the end of what was stored (the
  // rest read as zeros): fewer than n means the blob is shorter.
  virtual Status Read(uint64_t blob, uint64_t offset, size_t n, char* out,
                      size_t* present) const = 0;

  // Frees every byte of `blob` at or after `length` (0: the whole blob).
  // `end` bounds what the blob may hold (the end of its last extent), so an
  // implementation need not search for bytes beyond it.
  virtual Status Truncate(uint64_t blob, uint64_t length, uint64_t end) = 0;

  // Makes every Write, Truncate and Punch before it durable.
  virtual Status Sync() = 0;

  // Packs (KvStore): blobs holding many small files' chunks, whose space is
  // given back a chunk at a time. Implementations that can free a range in
  // the middle of a blob say so here; KvStore keeps small files inline in
  // their records on the others.
  virtual bool CanPunch() const { return false; }
  // Frees [offset, offset + length) of `blob` (it then reads as zeros). Only
  // called when CanPunch.
  virtual Status Punch(uint64_t /*blob*/, uint64_t /*offset*/, uint64_t /*length*/) {
    return Status::InvalidArgument("these blob files cannot free a range of a blob");
  }
  // The space `blob`'s bytes take (0: none, or no such blob). Only called
  // when CanPunch.
  virtual Result<uint64_t> StoredBytes(uint64_t /*blob*/) const {
    return Status::InvalidArgument("these blob files do not report a blob's space");
  }

  // The ranges of `blob` whose bytes were lost after Write returned OK,
  // since the last call for it (which forgets them): writes that went out
  // in the background and failed (RADOS), reported once by Sync too, for
  // whichever blob. A commit checks its files here (KvStore::Apply), so
  // that a loss reported to another caller's Sync cannot slip into an
  // asset. Waits for the blob's writes under way.
  virtual std::vector<Extent> TakeLost(uint64_t /*blob*/) { return {}; }
  // Gives back what TakeLost returned, when the caller could not act on it.
  virtual void RestoreLost(uint64_t /*blob*/, std::vector<Extent> /*lost*/) {}
  // The blobs TakeLost has ranges for (a clean stop drops their records).
  virtual std::vector<uint64_t> BlobsWithLost() { return {}; }

  // As Store::PreferredReadBytes.
  virtual size_t PreferredReadBytes() const { return size_t{1} << 20; }

  // Every blob that has bytes stored, for fsck's orphan search; *bytes gets
  // each one's stored size.
  virtual Status List(std::map<uint64_t, uint64_t>* bytes) const = 0;
};

// The ranges of each blob lost after Write returned OK, kept for
// BlobFiles::TakeLost by the implementations that can lose them.
// Thread-safe; its lock is a leaf (callers may hold their own).
class LostRanges {
 public:
  void Add(uint64_t blob, Extent range);
  // Returns and forgets the blob's ranges.
  std::vector<Extent> Take(uint64_t blob);
  // Gives back what Take returned.
  void Restore(uint64_t blob, std::vector<Extent> ranges);
  std::vector<uint64_t> Blobs() const;
  // Forgets the blob's bytes at or past `length` (a truncate or delete
  // freed them, so they are gone anyway).
  void ForgetPast(uint64_t blob, uint64_t length);

 private:
  mutable Mutex mu_;
  std::map<uint64_t, std::vector<Extent>> ranges_ GUARDED_BY(mu_);
};

// One sparse file per blob and per 2^40-byte segment of it (so offsets up
// to 2^62 fit file systems whose files stop at 16 TiB, like ext4):
// DIR/<id / kBlobsPerDirectory, hex>/<id, 16 hex digits>[.<segment>].
// Consecutive ids (the files of one upload) share a directory, as they
// would in a local copy: creating them stays cheap for the file system.
// Writes start their writeback at once (sync_file_range), and a background
// thread syncs each file every kBackgroundSyncBytes (16 MiB) written to it, so that
// a later Sync, the commit of a session, finds little left to make durable
// (on a virtual disk a sync also flushes the host's cache, which otherwise
// holds everything written since the last one).
// Sync fdatasyncs each file written since the last one (and the
// directories that gained files); past kMaxFilesPerSync files, one
// syncfs of the whole file system is cheaper.
class DirBlobFiles : public BlobFiles {
 public:
  static constexpr uint64_t kSegmentBytes = uint64_t{1} << 40;
  static constexpr size_t kMaxFilesPerSync = 256;
  static constexpr uint64_t kBackgroundSyncBytes = uint64_t{16} << 20;
  static constexpr uint64_t kBlobsPerDirectory = 4096;

  // Creates DIR when missing.
  static Result<std::unique_ptr<DirBlobFiles>> Open(const std::string& dir);
  ~DirBlobFiles() override;  // stops the background syncer

  // A blob's writes of kEarlyWritebackBytes or more start their writeback
  // at once, and its file is synced in the background every
  // kBackgroundSyncBytes. Smaller writes and a pack's do neither: the
  // writeback of the whole file is started in the background every
  // kBackgroundSyncBytes.
  Status Write(uint64_t blob, uint64_t offset, std::string_view data) override;
  Status WritePack(uint64_t pack, uint64_t offset, std::string_view data) override;
  Status Read(uint64_t blob, uint64_t offset, size_t n, char* out, size_t* present) const override;
  Status Truncate(uint64_t blob, uint64_t length, uint64_t end) override;
  Status Sync() override;
  // Where the file system frees a file's range (fallocate's
  // FALLOC_FL_PUNCH_HOLE: ext4, xfs, btrfs, tmpfs), found at Open.
  bool CanPunch() const override { return can_punch_; }
  Status Punch(uint64_t blob, uint64_t offset, uint64_t length) override;
  Result<uint64_t> StoredBytes(uint64_t blob) const override;
  Status List(std::map<uint64_t, uint64_t>* bytes) const override;
  // A file whose fdatasync failed (here or in the background) may have
  // lost any page written since its last good sync, and Linux reports
  // such an error once: a later fdatasync returns 0. So the whole segment
  // is kept as lost for the blob's next commit (which then drops its
  // records and fails), not tried again.
  std::vector<Extent> TakeLost(uint64_t blob) override;
  void RestoreLost(uint64_t blob, std::vector<Extent> lost) override;
  std::vector<uint64_t> BlobsWithLost() override;

  // The file of a blob's segment; exposed for tests that damage bytes.
  std::string PathOf(uint64_t blob, uint64_t segment) const;

  // Tests: while on, every fdatasync of a blob file fails with EIO.
  void FailSyncsForTest(bool on) { fail_syncs_for_test_ = on; }
  // Tests: background syncs that failed so far.
  int background_sync_failures() const { return background_sync_failures_; }
  // Tests: fdatasyncs the background syncer made, and writebacks it
  // started (of packs, and of blobs written in small writes), so far.
  int background_syncs() const { return background_syncs_; }
  int background_writebacks() const { return background_writebacks_; }

 private:
  DirBlobFiles(std::string dir, int dir_fd, bool can_punch);
  // Notes bytes written to the file at `path` (to sync at the next Sync).
  // Once kBackgroundSyncBytes were written to it since the last time, the
  // background syncer syncs it (`background_sync`) or starts its writeback.
  void MarkDirty(const std::string& path, bool new_entry, uint64_t bytes,
                 bool background_sync = true);
  // Write and WritePack.
  Status WriteFile(uint64_t blob, uint64_t offset, std::string_view data, bool pack);
  // The file at `path`, open for reading and writing: one of the last
  // kOpenFiles used, kept open, or opened now (and created, with its
  // directory, if `create`; *made_dir then says whether the directory was
  // made). NotFound when it does not exist and !create.
  // A pack takes every small file's write: an open and a close by path
  // for each was two system calls and a path walk per file.
  Result<std::shared_ptr<const int>> OpenFile(const std::string& path, bool create,
                                              bool* made_dir = nullptr) const;
  void SyncLoop();
  // fdatasync of a blob file (SyncPath), or the failure a test asked for.
  Status SyncFile(const std::string& path) const;
  // Keeps the segment of the blob file at `path` as lost.
  void NoteLost(const std::string& path);

  const std::string dir_;
  const int dir_fd_;  // for syncfs
  const bool can_punch_;
  static constexpr size_t kOpenFiles = 16;
  // Most recently used first. Truncate drops a file's entry under this
  // lock before removing the file, so no entry outlives its file's name.
  mutable Mutex open_mu_;
  mutable std::list<std::pair<std::string, std::shared_ptr<const int>>> open_files_
      GUARDED_BY(open_mu_);
  Mutex dirty_mu_;
  std::set<std::string> dirty_files_ GUARDED_BY(dirty_mu_);
  std::set<std::string> dirty_dirs_ GUARDED_BY(dirty_mu_);
  std::map<std::string, uint64_t> unsynced_bytes_
      GUARDED_BY(dirty_mu_);                                // written since the last sync
  std::vector<std::string> to_sync_ GUARDED_BY(dirty_mu_);  // for the background syncer
  // Files whose writeback the background syncer is to start (packs, and
  // blobs written in small writes).
  std::vector<std::string> to_start_ GUARDED_BY(dirty_mu_);
  bool stopping_ GUARDED_BY(dirty_mu_) = false;
  bool background_busy_ GUARDED_BY(dirty_mu_) = false;  // the syncer has paths out
  Status background_failed_ GUARDED_BY(dirty_mu_);      // for the next Sync
  LostRanges lost_;
  std::atomic<bool> fail_syncs_for_test_{false};
  std::atomic<int> background_sync_failures_{0};
  std::atomic<int> background_syncs_{0};
  std::atomic<int> background_writebacks_{0};
  CondVar sync_cv_;
  std::thread syncer_;  // last: started once everything above exists
};

// In memory, in pages. Keeps the last synced state too: DropUnsynced()
// returns to it, as a machine crash would.
class MemoryBlobFiles : public BlobFiles {
 public:
  Status Write(uint64_t blob, uint64_t offset, std::string_view data) override;
  Status Read(uint64_t blob, uint64_t offset, size_t n, char* out, size_t* present) const override;
  Status Truncate(uint64_t blob, uint64_t length, uint64_t end) override;
  Status Sync() override;
  bool CanPunch() const override { return can_punch_; }
  // Zeros the range; a page left all zeros is freed.
  Status Punch(uint64_t blob, uint64_t offset, uint64_t length) override;
  Result<uint64_t> StoredBytes(uint64_t blob) const override;
  Status List(std::map<uint64_t, uint64_t>* bytes) const override;

  // Tests: blob files that cannot free a range (as RADOS's), so KvStore
  // keeps small files inline.
  void DisablePunchForTest() { can_punch_ = false; }
  void DropUnsynced();
  // Bytes of pages held (tests see space freed).
  size_t ApproximateBytes() const;
  // Overwrites stored bytes behind the store's back (tests of corruption).
  void Damage(uint64_t blob, uint64_t offset, std::string_view bytes);

 private:
  static constexpr uint64_t kPage = 64 * 1024;
  struct Blob {
    uint64_t length = 0;
    std::map<uint64_t, std::string> pages;  // page index -> kPage bytes
  };
  using Blobs = std::map<uint64_t, Blob>;
  static void WriteInto(Blob* b, uint64_t offset, std::string_view data);

  bool can_punch_ = true;
  mutable Mutex mu_;
  Blobs current_ GUARDED_BY(mu_);
  Blobs synced_ GUARDED_BY(mu_);
};

}  // namespace upfs::store
