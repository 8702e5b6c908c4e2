// Kv: the ordered key-value map that KvStore builds the Store on. LevelDB,
// RADOS omaps (store/rados_kv.h) and an in-memory map implement it; nothing
// outside store/ sees it.
//
// Thread safety: all methods may be called concurrently. A Scan callback
// must not call back into the same Kv.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace upfs::store {

// Puts and deletes applied atomically, in order.
struct KvWrite {
  // A value of nullopt deletes the key.
  std::vector<std::pair<std::string, std::optional<std::string>>> ops;
  // Conditions checked atomically with the write, which happens only if
  // each key holds its value (nullopt: the key is absent). On a Kv
  // SharedByProcesses, the keys must be outside the extent tag (RadosKv:
  // in upfs.meta). Values are never empty.
  std::vector<std::pair<std::string, std::optional<std::string>>> expects;
  void Put(std::string key, std::string value) {
    ops.emplace_back(std::move(key), std::move(value));
  }
  void Delete(std::string key) { ops.emplace_back(std::move(key), std::nullopt); }
  void Expect(std::string key, std::optional<std::string> value) {
    expects.emplace_back(std::move(key), std::move(value));
  }
  bool empty() const { return ops.empty() && expects.empty(); }
};

// Return false to stop the scan.
using KvVisitor = std::function<bool(std::string_view key, std::string_view value)>;

class Kv {
 public:
  virtual ~Kv() = default;
  // NotFound when absent.
  virtual Status Get(std::string_view key, std::string* value) const = 0;
  // Visits keys in [begin, end) in order, from one consistent snapshot.
  // LevelDB steps over every deleted key between `begin` and the first
  // live key at or after it, and between the last key visited and the
  // next live key: store/kv_store.cc keeps its hot scans where that is
  // bounded. (So there is no "last key before": stepping back is the same
  // walk, backwards.)
  virtual Status Scan(std::string_view begin, std::string_view end,
                      const KvVisitor& visit) const = 0;
  // All of `write` or nothing; with sync, durable on return along with
  // every earlier write (but those that went out in the background and
  // failed: TakeWriteFailure). A Kv that is SharedByProcesses checks
  // `write.expects` with it, and fails with Stale (nothing written) when
  // one does not hold; the others leave them to their caller (KvStore
  // checks them under its lock: it is their only writer).
  virtual Status Commit(const KvWrite& write, bool sync) = 0;

  // Whether several processes write this Kv at once (RADOS: several
  // mounts of one pool).
  virtual bool SharedByProcesses() const { return false; }
  // Completes what processes that stopped, or lost their lease, left
  // halfway (RadosKv: their intents), once they can no longer write.
  virtual Status RecoverStoppedWriters() { return Status::OK(); }

  // Whether a Commit with sync=false may return before the write is
  // stored (then reported, if it fails, by TakeWriteFailure).
  virtual bool CommitsInBackground() const { return false; }
  // The first failure of a Commit that went out in the background and
  // wrote keys stored with `key` (RadosKv: in the same object), since the
  // last call for them; waits for those under way.
  virtual Status TakeWriteFailure(std::string_view /*key*/) { return Status::OK(); }
  // Reclaims space of deleted keys in [begin, last]. `begin` and `last`
  // themselves must be keys that are deleted or never used: an
  // implementation may write tombstones for them. Returns a failure of the
  // compaction (NoSpace when the disk filled during it).
  virtual Status Compact(std::string_view begin, std::string_view last) = 0;
  // OK when `bytes` more of upload data may be written now; NoSpace while
  // the backend's medium has less free than it keeps in reserve. Only data
  // is checked: records are small and must go through on a full store, so
  // that sessions can still be finished and aborted. Default: always OK.
  virtual Status CheckRoomForData(uint64_t /*bytes*/) { return Status::OK(); }
  // Bytes in all and bytes free where the Kv's data lives, as Store::GetSpace.
  // Default: NotSupported (a Kv in a directory leaves it to statvfs).
  virtual Status GetSpace(uint64_t* /*total_bytes*/, uint64_t* /*free_bytes*/) {
    return Status::NotSupported("this key-value store reports no space");
  }
  // Key comparisons made by the calling thread in this kind of Kv so far:
  // the work of its lookups and iterations, including the deleted keys an
  // iterator steps over unseen (LevelDB keeps them until a compaction).
  // Lets tests check that an operation's work does not grow with the
  // store's history. Default: not counted (0).
  virtual uint64_t ThreadKeyComparisons() const { return 0; }
};

}  // namespace upfs::store
