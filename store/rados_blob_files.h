// RadosBlobFiles: the BlobFiles of the RADOS backend (tests/ceph/DESIGN.md).
// A blob's bytes are striped over objects `upfs.b.<blob, 16 hex digits>.
// <stripe, 8 hex digits>`, stripe i holding bytes [i * S, (i + 1) * S) of
// the blob (S = stripe_bytes, 4 MiB by default).
//
// Write queues asynchronous writes (librados aio, OPERATION_FULL_TRY: a
// full pool fails them with NoSpace instead of blocking) and returns; at
// most max_in_flight operations and max_in_flight_bytes are queued at
// once, the caller waiting for room, so memory stays bounded whatever is
// written. A Read or Truncate of a range waits first for the queued writes
// that overlap it (read-your-writes). Sync waits for every queued write
// and returns the first failure since the last Sync (like fdatasync after
// a failed writeback); a RADOS write is durable once acknowledged, so
// there is nothing else to sync. The ranges of failed writes are kept per
// blob until TakeLost: a commit drops their records and fails, whichever
// caller's Sync saw the failure first (KvStore::Apply). A failure is
// reported once: by the next Sync, or by its own blob's TakeLost (the
// close, fsync or commit of its file), whichever comes first; so the first
// commit after a cluster outage does not fail for another file's write
// that its own close already reported (rados.faults.unreachable).
//
// Thread safety: as BlobFiles.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <rados/librados.hpp>

#include "base/mutex.h"
#include "store/blob_files.h"
#include "store/rados_connection.h"
#include "store/rados_lock.h"

namespace upfs::store {

class RadosBlobFiles : public BlobFiles {
 public:
  static Result<std::unique_ptr<RadosBlobFiles>> Open(
      std::shared_ptr<RadosConnection> conn, const std::string& pool, const std::string& ns,
      const RadosBlobOptions& options = {}, std::shared_ptr<RadosStoreLock> lock = nullptr);
  // Waits for every queued write.
  ~RadosBlobFiles() override;

  Status Write(uint64_t blob, uint64_t offset, std::string_view data) override;
  Status Read(uint64_t blob, uint64_t offset, size_t n, char* out, size_t* present) const override;
  Status Truncate(uint64_t blob, uint64_t length, uint64_t end) override;
  Status Sync() override;
  // Failed writes are kept per blob until taken (a blob truncated or
  // deleted forgets those past its new length).
  std::vector<Extent> TakeLost(uint64_t blob) override;
  void RestoreLost(uint64_t blob, std::vector<Extent> lost) override;
  std::vector<uint64_t> BlobsWithLost() override;
  // A stripe object: one read op fetches it whole.
  size_t PreferredReadBytes() const override { return static_cast<size_t>(options_.stripe_bytes); }
  // Sums the sizes of each blob's stripe objects.
  Status List(std::map<uint64_t, uint64_t>* bytes) const override;

  static std::string StripeObject(uint64_t blob, uint64_t stripe);

  // For tests: the most writes and bytes that were ever queued at once.
  size_t peak_in_flight() const;
  uint64_t peak_in_flight_bytes() const;

 private:
  // A queued write of bytes [begin, end) of a blob.
  struct Pending {
    RadosBlobFiles* owner = nullptr;
    uint64_t blob = 0;
    uint64_t begin = 0;
    uint64_t end = 0;
    librados::AioCompletion* completion = nullptr;
    bool done = false;
    int rc = 0;
    std::string what;
  };

  RadosBlobFiles(std::shared_ptr<RadosConnection> conn, librados::IoCtx io, std::string pool,
                 const RadosBlobOptions& options);
  static void OnComplete(librados::completion_t, void* arg);
  // Forgets finished writes, keeping the first failure.
  void ReapLocked() const REQUIRES(mu_);
  // Waits until no queued write of `blob` overlaps [begin, end).
  void WaitForOverlapping(uint64_t blob, uint64_t begin, uint64_t end) const;

  const std::shared_ptr<RadosConnection> conn_;
  std::shared_ptr<RadosStoreLock> lock_;  // the store's, shared with RadosKv; null in tests
  mutable librados::IoCtx io_;            // after conn_: closed before the client shuts down
  const std::string pool_;
  const RadosBlobOptions options_;

  mutable Mutex mu_;
  mutable CondVar cv_;  // a queued write finished
  mutable std::list<Pending> pending_ GUARDED_BY(mu_);
  mutable uint64_t in_flight_bytes_ GUARDED_BY(mu_) = 0;  // of unfinished writes
  mutable size_t in_flight_ GUARDED_BY(mu_) = 0;
  mutable Status failed_ GUARDED_BY(mu_);             // first failure since the last Sync
  mutable uint64_t failed_blob_ GUARDED_BY(mu_) = 0;  // whose write that was
  mutable LostRanges lost_;                           // of failed writes, until TakeLost
  size_t peak_in_flight_ GUARDED_BY(mu_) = 0;
  uint64_t peak_in_flight_bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace upfs::store
