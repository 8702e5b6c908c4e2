// RadosKv: the Kv of the RADOS backend (tests/ceph/DESIGN.md). Keys live in
// the omaps of objects of one pool and RADOS namespace:
//   * a blob's extent records and end record ("@" blob ...) in the omap
//     of `upfs.x.<blob, 16 hex digits>`, so the records a write of one
//     blob commits are one atomic operation on one object;
//   * every other key in the omap of `upfs.meta`, and with them the
//     intents "T" seq of commits that span objects (below).
//
// Several mounts (each its own RadosKv) write one pool: each names its
// intents with its mount id, and completes only its own, but for those of
// mounts whose leases ran out (fenced first: RecoverStoppedWriters, and
// Open). A commit's conditions (KvWrite::expects, on upfs.meta's keys)
// are omap_cmp assertions in the operation that decides it.
//
// Commit: a write whose keys all fall in one object is one
// ObjectWriteOperation, atomic and durable once RADOS acknowledges it
// (every write is, so `sync` changes nothing). A write spanning several
// objects first stores itself, serialized, as intent T<seq> in upfs.meta
// together with its meta keys (one operation), then applies each other
// object's part, then removes the intent. Open rolls every intent left
// by a process that stopped in between forward (puts and deletes are
// idempotent), so such a write is all or nothing once the store is open
// again.
//
// Scan: one page of one object's omap is one consistent read. Scans that
// need more (several pages or objects) exclude this process's commits
// while they run, and multi-object commits exclude every read, so within
// one process every Scan and Get sees whole commits. (Another mount's
// multi-object commit may be seen halfway: its upfs.meta part, intent and
// all, comes first. KvStore puts everything of one commit that names
// records another mount looks up, a session's or an asset's, in upfs.meta.) Background commits
// (below) are the exception: a multi-page Scan waits for those under way
// over its range when it starts, not for ones begun while it runs. That
// is safe for KvStore, the only caller: background commits are one blob's
// extent records, written under that blob's lock, and its scans of a
// blob's records (ReadAt, Extents) hold the same lock.
//
// Writes pass librados::OPERATION_FULL_TRY: on a full pool or cluster they
// fail at once with NoSpace instead of blocking until space appears.
//
// Thread safety: as Kv.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include <rados/librados.hpp>

#include "base/mutex.h"
#include "store/kv.h"
#include "store/rados_connection.h"
#include "store/rados_lock.h"

namespace upfs::store {

class RadosKv : public Kv {
 public:
  static constexpr const char* kMetaObject = "upfs.meta";
  // Omap entries read per call (Ceph's osd_max_omap_entries_per_request
  // is 1024).
  static constexpr uint64_t kScanPage = 1000;
  // How long CheckRoomForData trusts the pool's quota and usage.
  static constexpr auto kSpaceCacheTime = std::chrono::seconds(1);
  // Commits going out in the background at once (Commit, sync=false), one
  // per object at a time.
  static constexpr size_t kMaxBackgroundCommits = 32;
  // Keys a background commit queued behind another of its object takes
  // from the writes after it before they wait (the OSD's omap ops take up
  // to 1024 entries).
  static constexpr size_t kMaxCoalescedKeys = 512;

  // Opens the Kv in `pool`/`ns` and rolls forward every intent left there.
  // `lock` (the store's, taken first; null in tests of the Kv alone) is
  // held until the Kv is gone, and while it is lost every Commit fails.
  static Result<std::unique_ptr<RadosKv>> Open(std::shared_ptr<RadosConnection> conn,
                                               const std::string& pool, const std::string& ns,
                                               std::shared_ptr<RadosStoreLock> lock = nullptr);

  // Waits for the commits still going out in the background.
  ~RadosKv() override;

  Status Get(std::string_view key, std::string* value) const override;
  Status Scan(std::string_view begin, std::string_view end, const KvVisitor& visit) const override;
  // With sync=false, a write whose keys all fall in one extent object (a
  // blob's records after a write of its bytes) goes out in the background
  // (aio, at most kMaxBackgroundCommits at once) and returns: RADOS keeps
  // one client's operations on one object in order, Get answers from the
  // keys still going out, and a Scan over them waits for them. Every
  // other write waits for those first. A failure is kept for the object
  // until TakeWriteFailure. One object has one such operation going out
  // at a time; the writes made meanwhile are queued behind it as one
  // (up to kMaxCoalescedKeys keys), applied in their order. A `cp` of 1 GiB
  // took the OSD about 2 370 operations before (1 024 of them stripe
  // writes), about 1 470 so, and its CPU goes by operations.
  Status Commit(const KvWrite& write, bool sync) override;
  Status TakeWriteFailure(std::string_view key) override;
  bool CommitsInBackground() const override { return true; }
  // Several mounts write one pool; `expects` go in the operation on
  // upfs.meta (omap_cmp), the intent's for a multi-object write.
  bool SharedByProcesses() const override { return true; }
  // Completes the intents of mounts whose leases ran out, after fencing
  // them (MountLease::Fence), under a lock of the pool ("upfs.recover" on
  // upfs.lock) so that one process applies each.
  Status RecoverStoppedWriters() override;
  // Removes the extent objects in [begin, last] whose omap is empty.
  Status Compact(std::string_view begin, std::string_view last) override;
  // NoSpace while the pool's byte quota, or the cluster's free space,
  // leaves less than `bytes`. Looked up at most every kSpaceCacheTime.
  Status CheckRoomForData(uint64_t bytes) override;
  // The cluster's raw size and free bytes (cluster_stat), capped by the
  // pool's byte quota and what its objects use, if it has one. Looked up
  // at most every kSpaceCacheTime (statfs is three monitor round trips;
  // file managers call it often), less the upload bytes admitted since.
  Status GetSpace(uint64_t* total_bytes, uint64_t* free_bytes) override;

  // The object a key lives in.
  static std::string ObjectOf(std::string_view key);
  static std::string ExtentObject(uint64_t blob);

  // Tests of crashes: the next multi-object Commit stops right after its
  // intent is stored, returning IOError, as if the process had died there
  // (the next Commit of this object completes it first, as Open would).
  void StopNextCommitAfterIntentForTest() { stop_after_intent_ = true; }
  // Crash tests through a mount: with UPFS_TEST_KILL_AFTER_INTENT=1 in the
  // environment at Open, the process sends itself SIGKILL right after the
  // first multi-object Commit stored its intent, before any other object
  // got its part (tests/integration/torture_kill9.sh, on RADOS).
  static constexpr const char* kKillAfterIntentVariable = "UPFS_TEST_KILL_AFTER_INTENT";
  // How many operations the commits in the background took so far (tests:
  // those queued behind one going out share one).
  uint64_t background_sends() const {
    MutexLock lock(bg_mu_);
    return background_sends_;
  }
  // How many intents the last Open rolled forward.
  uint64_t rolled_forward() const { return rolled_forward_; }

 private:
  // Final puts (a value) and deletes (nullopt) per object of one write.
  using ObjectOps = std::map<std::string, std::map<std::string, std::optional<std::string>>>;

  // A write spanning objects whose intent is stored but not yet removed.
  struct Intent {
    std::string key;  // "T" seq
    ObjectOps by_object;
  };

  // A commit going out in the background.
  struct Background {
    RadosKv* owner = nullptr;
    uint64_t seq = 0;
    std::string oid;
    std::map<std::string, std::optional<std::string>> ops;
    bool puts = false;
    bool sent = false;  // false: queued behind the one of its object going out
    librados::AioCompletion* completion = nullptr;
    bool done = false;
    int rc = 0;
  };

  RadosKv(std::shared_ptr<RadosConnection> conn, librados::IoCtx io, std::string pool);
  Status CommitInBackground(const std::string& oid,
                            std::map<std::string, std::optional<std::string>> ops);
  static void OnBackgroundDone(librados::completion_t, void* arg);
  // Sends `c` (aio_operate), or marks it done with the error.
  void SendLocked(Background* c) const REQUIRES(bg_mu_);
  // Forgets finished background commits and their keys, keeping failures.
  void ReapLocked() const REQUIRES(bg_mu_);
  // Waits until no background commit is under way (all), or none that
  // writes a key in [begin, end).
  void WaitForBackground() const;
  void WaitForBackgroundKeys(std::string_view begin, std::string_view end) const;
  Status RollForward();
  Status CommitOps(ObjectOps by_object, const KvWrite& write);
  // Applies every object's part of pending_ and removes its intent. On
  // failure pending_ stays, and every later Commit tries again first:
  // none may change those keys before the intent is gone, or a roll
  // forward at the next open would undo it.
  Status FinishPendingLocked() REQUIRES(view_mu_);
  // Adds the omap part of one object's write to `op`: puts (`ops` with a
  // value, and `extra_puts`) and removals. Returns how many of each.
  static std::pair<size_t, size_t> OmapWrite(
      const std::map<std::string, std::optional<std::string>>& ops,
      const std::map<std::string, std::string>& extra_puts, librados::ObjectWriteOperation* op);
  // One operation on `oid` applying `ops`, plus `extra_puts`.
  // With `expects`, only if its conditions hold (Stale otherwise).
  Status Apply(const std::string& oid, const std::map<std::string, std::optional<std::string>>& ops,
               const std::map<std::string, std::string>& extra_puts,
               const KvWrite* expects = nullptr);
  // Visits `oid`'s keys in [begin, end). *whole: whether it was one page.
  Status ScanObject(const std::string& oid, std::string_view begin, std::string_view end,
                    const KvVisitor& visit, bool* stopped, bool stop_after_one_page,
                    bool* whole) const;
  // The extent objects whose blobs fall in [first, last], in blob order.
  Status ExtentObjectsIn(uint64_t first, uint64_t last, std::vector<uint64_t>* blobs) const;
  Status ScanLocked(std::string_view begin, std::string_view end, const KvVisitor& visit) const
      REQUIRES(view_mu_);
  // The pool's quota (if any) and the cluster's size and free space, one
  // look-up each: total 0 when neither is known yet.
  Status ReadSpace(uint64_t* total_bytes, uint64_t* free_bytes) const;
  // ReadSpace into the fields below unless they are younger than
  // kSpaceCacheTime.
  Status RefreshSpaceLocked() REQUIRES(space_mu_);

  const std::shared_ptr<RadosConnection> conn_;
  std::shared_ptr<RadosStoreLock>
      lock_;                    // released after the last commit (and the blob files' writes)
  mutable librados::IoCtx io_;  // after conn_: closed before the client shuts down
  const std::string pool_;
  std::string mount_;  // the lease's id: intents are "T" mount seq (set by Open)

  // Held shared by single-object commits and single-page reads, exclusively
  // by multi-object commits and by scans of more than one page.
  mutable SharedMutex view_mu_;
  uint64_t next_intent_ GUARDED_BY(view_mu_) = 0;  // exclusively
  std::optional<Intent> pending_ GUARDED_BY(view_mu_);
  std::atomic<bool> has_pending_{false};
  std::atomic<bool> stop_after_intent_{false};
  bool kill_after_intent_ = false;  // set by Open only
  uint64_t rolled_forward_ = 0;

  mutable Mutex bg_mu_;
  mutable CondVar bg_cv_;  // a background commit finished
  mutable std::list<Background> bg_ GUARDED_BY(bg_mu_);
  mutable size_t bg_in_flight_ GUARDED_BY(bg_mu_) = 0;
  uint64_t bg_next_seq_ GUARDED_BY(bg_mu_) = 0;
  mutable uint64_t background_sends_ GUARDED_BY(bg_mu_) = 0;
  // GUARDED_BY(bg_mu_): each key a background commit under way writes:
  // the newest such commit's seq and value (nullopt: deleted).
  mutable std::map<std::string, std::pair<uint64_t, std::optional<std::string>>, std::less<>>
      bg_keys_;
  // GUARDED_BY(bg_mu_): first failure per object, until TakeWriteFailure.
  mutable std::map<std::string, Status> bg_failed_;

  Mutex space_mu_;
  std::chrono::steady_clock::time_point space_checked_ GUARDED_BY(space_mu_);
  uint64_t space_total_ GUARDED_BY(space_mu_) = 0;  // 0 while unknown
  uint64_t space_left_ GUARDED_BY(space_mu_) = 0;   // bytes until quota or full
};

// Intents: a KvWrite serialized, and back. False when `in` is not one.
std::string EncodeKvWrite(const KvWrite& write);
bool DecodeKvWrite(std::string_view in, KvWrite* write);

}  // namespace upfs::store
