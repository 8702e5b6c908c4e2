// MountLease: one mount's share of a store that several mounts serve at
// once (RADOS: store/rados_lock.h), as KvStore and RadosKv see it.
//
// Each mount holds a lease, renewed while it lives, under an id of its own
// (16 hex digits, new for every process). A session is held by the mount
// that began it (KvStore: the "H" record); another mount takes it over
// only once the holder's lease has run out and the holder is fenced: it
// can change nothing in the store any more, even if it was only paused
// and comes back (docs/rados.md, "Several mounts").
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <set>
#include <string>

#include "base/status.h"

namespace upfs::store {

class MountLease {
 public:
  virtual ~MountLease() = default;
  // This mount's id.
  virtual const std::string& Id() const = 0;
  // Who this mount is, for other mounts' messages (host, PID, address).
  virtual const std::string& Description() const = 0;
  // OK while this mount's lease is live; else why it may not write.
  virtual Status Held() const = 0;
  // The ids of the mounts whose leases are live now (this one included).
  virtual Result<std::set<std::string>> LiveIds() = 0;
  // Makes sure the mount that `description` (its own Description())
  // names, which the caller found not live (LiveIds), can change
  // nothing in the store from now on: its client is cut off from the
  // cluster (a process on this machine that is gone needs nothing).
  virtual Status Fence(const std::string& description) = 0;
};

}  // namespace upfs::store
