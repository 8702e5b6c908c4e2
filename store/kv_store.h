// KvStore: the Store built on an ordered key-value map (store/kv.h), with
// the key layout of store/records.h. Shared by the LevelDB backend, the
// RADOS one (store/rados_store.h) and the in-memory one, so all behave
// identically.
//
// Blob bytes live in BlobFiles (store/blob_files.h), at their own offsets;
// the Kv holds an extent record per chunk: (blob, offset) -> length and the
// XXH3 of the chunk's bytes, at most kMaxChunkBytes per chunk. The bytes of
// writes below kInlineChunkEnd are kept inline, in their extent records. A write
// stores its bytes first, then its extent records; where it overlaps
// chunks already stored, those are trimmed or removed (their kept parts
// re-checksummed from their verified bytes) in the same atomic Kv write, so
// a blob's chunks never overlap and reads need no ordering rule.
//
// Crashes: bytes without an extent record are invisible (never received).
// An extent record whose bytes did not survive (a machine crash lost them;
// or a kill between an overwrite's bytes and its records) fails its
// checksum; the serving process finds such records with BeginUse() after an
// unclean stop and drops them, so the range shows as missing and the
// client sends it again. A synced Apply syncs the blob bytes first, so a
// commit never names bytes that are not durable.
//
// Thread safety: as Store. Each blob's reads and writes are ordered by a
// lock (one of kBlobLocks, chosen by the blob id): a read sees a write's
// bytes and records together or not at all.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "store/blob_files.h"
#include "store/kv.h"
#include "store/mount_lease.h"
#include "store/records.h"
#include "store/store.h"

namespace upfs::store {

// Largest chunk value: writes larger than this are split.
inline constexpr size_t kMaxChunkBytes = size_t{1} << 20;
// Inline chunks: a write that ends at or below this offset of its blob
// keeps its bytes in its extent record, not in the blob files. A small
// file then costs no file of its own (no create, no directory entry, no
// per-file sync at the commit, whose synced Kv write makes its bytes
// durable with the records), which is what kept small files behind
// passthrough (docs/performance.md: the threshold was chosen there).
// Larger files' bytes stay out of the Kv, whose log and compactions would
// copy them again and again.
// UPFS_INLINE_CHUNK_END (bytes) overrides it at build time, to measure
// other thresholds (tests/bench/small_files.sh); 0 turns inline chunks off.
#ifndef UPFS_INLINE_CHUNK_END
#define UPFS_INLINE_CHUNK_END (64 << 10)
#endif
inline constexpr uint64_t kInlineChunkEnd = UPFS_INLINE_CHUNK_END;

// Packs: where the blob files can free a range of a blob (BlobFiles::
// CanPunch: a directory store), small files' chunks are not kept inline
// but appended to a pack, a blob shared by the chunks of many files
// (records.h, "K"), each chunk at a kPackAlign boundary, so that each one
// holds its pages alone and freeing it (a delete, truncate or overwrite)
// punches them out. A pack takes chunks until kPackBytes; one no chunk is
// left in goes with its record. A small file then costs its bytes written
// once, into a file already open, and the Kv only its records: LevelDB's
// log and compactions no longer copy small files' bytes (5-8x the bytes
// uploaded, docs/performance.md). A part kept of an overwritten packed
// chunk is kept inline.
inline constexpr uint64_t kPackBytes = uint64_t{64} << 20;
inline constexpr uint64_t kPackAlign = 4096;

// A range of a pack freed by a change of records, to punch once the change
// is committed.
struct PackedRange {
  uint64_t pack = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// A deleted or truncated blob's bytes are freed at once (BlobFiles). Its
// extent records leave tombstones in the Kv, compacted away (Compact, on a
// background thread) once this many records were removed since the last
// compaction, so the records of long-gone uploads do not pile up.
inline constexpr uint64_t kCompactAfterFreedRecords = 4096;
// Compact() compacts at most this many separate key ranges.
inline constexpr size_t kMaxCompactRanges = 8;

class KvStore : public Store {
 public:
  // Checks (or, for an empty Kv with create set, writes) the format record.
  // `lease`: this mount's, on a store several mounts share (RADOS); null
  // for a store one process serves alone.
  static Result<std::unique_ptr<KvStore>> Open(std::unique_ptr<Kv> kv,
                                               std::unique_ptr<BlobFiles> blobs, bool create,
                                               std::shared_ptr<MountLease> lease = nullptr);
  // Stops the background reclaimer; after BeginUse, syncs the blob bytes
  // and clears the in-use mark (a clean stop).
  ~KvStore() override;

  // For the process that serves the store (not for offline tools): marks
  // the store in use, durably (a shared store: this mount, "U" its id). When the mark was already
  // there, the last serving process stopped uncleanly, so first every extent record of the open
  // sessions' files is checked against its bytes, and those that fail (bytes a crash lost) are
  // dropped, each logged. Returns how many.
  Result<uint64_t> BeginUse();

  Status Apply(const Batch& batch, bool sync) override;
  bool AcknowledgesEarly() const override { return kv_->CommitsInBackground(); }
  size_t PreferredReadBytes() const override { return blobs_->PreferredReadBytes(); }
  Status FlushBlob(uint64_t blob) override;
  Result<uint64_t> NewIds(uint64_t count) override;
  const std::string& MountId() const override { return mount_id_; }
  std::string DescribeMount(const std::string& id) const override;
  Status GetHolder(uint64_t session_id, std::string* holder) const override;
  Status TakeOver(uint64_t session_id, const std::string& from) override;
  Status AddReader(uint64_t blob, const AssetLocation& where) override;
  Status DropReaders(const std::vector<uint64_t>& blobs) override;
  Status Unread(const std::vector<uint64_t>& blobs, std::vector<uint64_t>* out) const override;
  Status ClaimNotices(std::vector<std::string>* out) override;
  Status TakeOverNotices(std::vector<std::string>* out) override;
  Status SetQuotaGrant(uint32_t uid, QuotaGrant need, QuotaGrant want, QuotaGrant limit,
                       QuotaGrant* granted) override;
  Status GetSession(std::string_view name, SessionRecord* out) const override;
  std::unique_ptr<ByteSink> OpenBlob(uint64_t blob) override;
  std::unique_ptr<ByteSink> OpenCommittedBlob(uint64_t blob) override;
  Status ListSessions(std::vector<SessionRecord>* out) const override;
  Status ListNodes(uint64_t session_id, std::vector<NodeRecord>* out) const override;
  Status GetAsset(std::string_view name, AssetRecord* out) const override;
  Status ListAssets(std::vector<AssetRecord>* out) const override;
  Status ListNotices(std::vector<std::string>* out) const override;
  Status ListAssetEntries(std::string_view asset, std::vector<AssetEntry>* out) const override;
  Status ListRemovedBlobs(std::vector<uint64_t>* out) const override;
  Status GetAssetEntry(std::string_view asset, std::string_view dir, std::string_view name,
                       AssetEntry* out) const override;
  Status ListAssetDir(std::string_view asset, std::string_view dir,
                      std::vector<AssetEntry>* out) const override;
  Status LocateId(uint64_t id, AssetLocation* out) const override;
  // Compacts the key ranges of the blobs whose bytes were deleted or
  // truncated since the last compaction. Returns the first failure.
  Status Compact() override;
  // The Kv's space (the records and the bytes share a medium in both
  // backends).
  Result<Space> GetSpace() override;

  Kv* kv() const { return kv_.get(); }
  BlobFiles* blobs() const { return blobs_.get(); }

  // The lock that orders reads and writes of `blob`'s bytes and records.
  std::shared_mutex& BlobLock(uint64_t blob) const { return blob_locks_[blob % kBlobLocks]; }

  // Packs, for the writes of KvBlob. Whether small chunks go to packs.
  bool UsesPacks() const { return blobs_->CanPunch(); }
  // Reserves n bytes in the current pack (a new one when it is full) and
  // writes `data` there; *at is where. The pack stays open to the caller
  // (it is not dropped even if empty) until ReleasePack. Must not be
  // called under a blob lock (a new pack's record is written under
  // apply_mu_).
  Status WriteToPack(std::string_view data, PackedAt* at);
  void ReleasePack(uint64_t pack);
  // Punches out `ranges` (their records are gone), then drops each pack
  // they leave empty. `recorded`: the ranges have pending-free records
  // ("F", written with the change that removed their chunks' records),
  // removed here once they are punched out. Failures are logged: they only
  // keep space (a recorded range is tried again at the next start).
  void FreePacked(const std::vector<PackedRange>& ranges, bool recorded = true);
  // Tests: while on, recorded ranges are left as a crash right after the
  // change would leave them.
  void SkipPackFreesForTest(bool on) { skip_pack_frees_for_test_ = on; }

 private:
  KvStore(std::unique_ptr<Kv> kv, std::unique_ptr<BlobFiles> blobs, uint64_t next_id,
          std::shared_ptr<MountLease> lease);
  // Ids a mount of a shared store reserves at once.
  static constexpr uint64_t kIdBlock = uint64_t{1} << 16;
  static constexpr size_t kBlobLocks = 64;

  // Adds the id counter's record to `write`, under apply_mu_ (so no older
  // value overtakes it): a store one process serves keeps its counter
  // with the writes that use ids; a shared store's moves only with each
  // block reserved (NewIds).
  void PutNextId(KvWrite* write) const REQUIRES(apply_mu_);
  // Apply under apply_mu_; reports the blobs it freed bytes of.
  Status ApplyLocked(const Batch& batch, bool sync, std::vector<uint64_t>* freed_blobs,
                     uint64_t* freed);
  // Commits `write` (not synced) only if its conditions (expects) hold,
  // else Stale: checked by the Kv when it is shared by processes (RADOS),
  // else here, under apply_mu_, which every Apply takes.
  Status CommitIfUnchanged(KvWrite write);
  // A shared store: removes the marks ("U") of mounts that stopped
  // uncleanly and hold no session any more, fencing each first.
  Status ForgetStoppedMounts();
  // ClaimNotices, or with `taken_only` TakeOverNotices: lists the
  // notices this mount is to deliver, taking those of gone mounts.
  Status CollectNotices(std::vector<std::string>* out, bool taken_only);
  // Drops the extent records of session `session_id`'s files whose bytes
  // did not survive a crash (they fail their checksums). Returns how many.
  Result<uint64_t> DropUnsurvivedChunks(uint64_t session_id, const std::string& session_name);
  // Removes the records of the bytes of `blob` the blob files lost
  // (TakeLost), so they read as never written; sets *lost_range (when
  // given) to the first range when there were any. Fails only when the
  // records could not be removed (the ranges are then kept for next time).
  Status DropLostBytes(uint64_t blob, std::string* lost_range);

  const std::unique_ptr<Kv> kv_;
  const std::unique_ptr<BlobFiles> blobs_;
  mutable std::array<std::shared_mutex, kBlobLocks> blob_locks_;
  bool in_use_ = false;  // BeginUse succeeded
  // Serializes Apply so the persisted next-id never goes backwards.
  Mutex apply_mu_;
  std::atomic<uint64_t> next_id_;
  // A shared store: this mount's lease, and the ids it reserved,
  // [next_id_, ids_end_), taken under ids_mu_.
  const std::shared_ptr<MountLease> lease_;
  const std::string mount_id_;
  Mutex ids_mu_;
  uint64_t ids_end_ GUARDED_BY(ids_mu_) = 0;

  // Removes `pack`'s file and record when it holds no bytes and is neither
  // the current pack nor open to a writer.
  void DropPackIfEmpty(uint64_t pack);
  // At the start: frees the ranges of the pending-free records a crash
  // left, and drops the packs left empty.
  Status FreePendingPacked();
  Status DropEmptyPacks();
  // After a Sync: moves the packs the blob files lost bytes of (a failed
  // fdatasync) to lost_packs_, whose chunks DropLostBytes drops from each
  // file's records at its next flush or commit.
  Status TakeLostPacks();

  // The pack that takes new chunks (0: none yet), and where its next chunk
  // goes; the writers each pack is open to. A leaf lock.
  Mutex pack_mu_;
  uint64_t pack_ GUARDED_BY(pack_mu_) = 0;
  uint64_t pack_end_ GUARDED_BY(pack_mu_) = 0;
  std::map<uint64_t, int> pack_writers_ GUARDED_BY(pack_mu_);
  std::set<uint64_t> lost_packs_ GUARDED_BY(pack_mu_);
  std::atomic<bool> skip_pack_frees_for_test_{false};
  // One new pack at a time; taken before apply_mu_.
  Mutex pack_rotate_mu_;

  // Compacts freed blobs whenever kCompactAfterFreedRecords accumulate.
  void ReclaimLoop();

  Mutex compact_mu_;  // one Compact at a time; taken before freed_mu_
  Mutex freed_mu_;
  CondVar freed_cv_;
  std::set<uint64_t> freed_blobs_
      GUARDED_BY(freed_mu_);  // blobs with bytes freed since the last Compact
  uint64_t freed_records_ GUARDED_BY(freed_mu_) = 0;
  bool stopping_ GUARDED_BY(freed_mu_) = false;
  std::thread reclaimer_;  // last: started once everything above exists
};

}  // namespace upfs::store
