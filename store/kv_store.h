// KvStore: the Store built on an ordered key-value map (store/kv.h), with
// the key layout of store/records.h. Shared by the LevelDB backend and the
// in-memory one, so both behave identically.
//
// Blob bytes are byte-addressed chunks: WriteAt(offset, data) stores data
// under (blob, offset), at most kMaxChunkBytes per chunk, with no read of
// existing bytes unless the write overlaps chunks already stored. Then the
// overlapped chunks are trimmed or removed in the same atomic write, so a
// blob's chunks never overlap and reads need no ordering rule.
//
// Thread safety: as Store.
#pragma once

#include <atomic>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <set>
#include <vector>

#include "store/kv.h"
#include "store/store.h"

namespace upfs::store {

// Largest chunk value: writes larger than this are split.
inline constexpr size_t kMaxChunkBytes = size_t{1} << 20;

// Space of deleted chunks is reclaimed (Compact, on a background thread)
// once the bytes freed since the last compaction reach this many, so that
// aborting a session, deleting or truncating a file really frees disk space
// within moments (LevelDB alone may keep deleted chunks in its bottom level
// indefinitely).
inline constexpr uint64_t kCompactAfterFreedBytes = uint64_t{8} << 20;
// Compact() compacts at most this many separate key ranges.
inline constexpr size_t kMaxCompactRanges = 8;

class KvStore : public Store {
 public:
  // Checks (or, for an empty Kv with create set, writes) the format record.
  static Result<std::unique_ptr<KvStore>> Open(std::unique_ptr<Kv> kv, bool create);
  ~KvStore() override;  // stops the background reclaimer

  Status Apply(const Batch& batch, bool sync) override;
  uint64_t NewIds(uint64_t count) override;
  std::unique_ptr<ByteSink> OpenBlob(uint64_t blob) override;
  std::unique_ptr<ByteSink> OpenCommittedBlob(uint64_t blob) override;
  Status ListSessions(std::vector<SessionRecord>* out) const override;
  Status ListNodes(uint64_t session_id, std::vector<NodeRecord>* out) const override;
  Status GetAsset(std::string_view name, AssetRecord* out) const override;
  Status ListAssets(std::vector<AssetRecord>* out) const override;
  Status GetAssetEntry(std::string_view asset, std::string_view dir, std::string_view name,
                       AssetEntry* out) const override;
  Status ListAssetDir(std::string_view asset, std::string_view dir,
                      std::vector<AssetEntry>* out) const override;
  Status LocateId(uint64_t id, AssetLocation* out) const override;
  // Compacts the key ranges of the blobs whose bytes were deleted or
  // truncated since the last compaction. Returns the first failure.
  Status Compact() override;

  Kv* kv() const { return kv_.get(); }

 private:
  explicit KvStore(std::unique_ptr<Kv> kv, uint64_t next_id);

  // Apply under apply_mu_; reports the blobs it freed bytes of.
  Status ApplyLocked(const Batch& batch, bool sync, std::vector<uint64_t>* freed_blobs, uint64_t* freed);

  const std::unique_ptr<Kv> kv_;
  // Serializes Apply so the persisted next-id never goes backwards.
  std::mutex apply_mu_;
  std::atomic<uint64_t> next_id_;

  // Compacts freed blobs whenever kCompactAfterFreedBytes accumulate.
  void ReclaimLoop();

  std::mutex compact_mu_;  // one Compact at a time; taken before freed_mu_
  std::mutex freed_mu_;
  std::condition_variable freed_cv_;
  std::set<uint64_t> freed_blobs_;  // GUARDED_BY(freed_mu_): blobs with bytes freed since the last Compact
  uint64_t freed_bytes_ = 0;        // GUARDED_BY(freed_mu_)
  bool stopping_ = false;           // GUARDED_BY(freed_mu_)
  std::thread reclaimer_;           // last: started once everything above exists
};

// Adds to `write` what trims blob `blob` to `length` bytes (length 0:
// deletes it). Reads the extents it needs from `kv`. Adds the bytes it
// removes to *freed when given.
Status AddTruncate(const Kv& kv, uint64_t blob, uint64_t length, KvWrite* write, uint64_t* freed = nullptr);

}  // namespace upfs::store
