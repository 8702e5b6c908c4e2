// The settings of a RADOS store, apart from librados' headers: the program
// (fs/) fills them in without loading the RADOS backend
// (store/rados_backend.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace upfs::store {

struct RadosConnectOptions {
  // Ceph configuration file; empty: librados' own search ($CEPH_CONF,
  // /etc/ceph/ceph.conf, ...).
  std::string ceph_conf;
  // The client's name without "client.": its key must be in the keyring
  // the configuration names.
  std::string ceph_id = "admin";
  // Every librados call (monitor and OSD operations, and the connect
  // itself) gives up after this long with ETIMEDOUT, an IOError here: a
  // cluster that does not answer fails requests instead of hanging them.
  std::chrono::seconds timeout{30};
};

struct RadosBlobOptions {
  // Bytes per stripe object. 4 MiB, as `rados bench`: one such write
  // took 13 - 34 ms on the test machine (tests/ceph/NOTES.md).
  uint64_t stripe_bytes = uint64_t{4} << 20;
  // Writes queued at once: ~16 reach the pool's throughput there.
  size_t max_in_flight = 16;
  // Bytes queued at once (their copies are held until acknowledged).
  uint64_t max_in_flight_bytes = uint64_t{64} << 20;
};

// How long a mount's lease lasts without renewal (store/rados_lock.h).
inline constexpr std::chrono::seconds kDefaultRadosLease{30};

struct RadosStoreOptions {
  RadosConnectOptions connect;  // ceph_conf, ceph_id, timeout (30 s)
  RadosBlobOptions blobs;       // stripe size, writes in flight
  // How long a mount's lease lasts without renewal: after it, another
  // mount may take its sessions over (`-o lease`).
  std::chrono::seconds lease = kDefaultRadosLease;
};

}  // namespace upfs::store
