// Opening a upfs store kept in a RADOS pool (tests/ceph/DESIGN.md): a
// KvStore over RadosKv (records, in omaps) and RadosBlobFiles (blob bytes,
// in stripe objects), beside OpenLevelDbStore for a local directory.
//
//   * a pool, or RADOS namespace, without `upfs.meta` becomes a new store;
//   * a store of another format version is refused with both versions;
//   * commits that a stopped process left halfway are completed (RadosKv);
//   * several mounts share the store, each with a lease of its own
//     (store/rados_lock.h), taken before anything else; an offline tool
//     has it to itself, and is refused with Busy naming the mounts;
//   * for the serving process: KvStore::BeginUse, as the LevelDB store.
//
// Thread safety: as Store.
#pragma once

#include <memory>
#include <string>

#include "store/kv_store.h"
#include "store/rados_blob_files.h"
#include "store/rados_connection.h"
#include "store/rados_kv.h"
#include "store/rados_options.h"

namespace upfs::store {

// The store in `pool`, RADOS namespace `ns` ("": the default one).
Result<std::unique_ptr<Store>> OpenRadosStore(const std::string& pool, const std::string& ns,
                                              const RadosStoreOptions& options = {});

// The same on an existing connection.
Result<std::unique_ptr<Store>> OpenRadosStore(
    std::shared_ptr<RadosConnection> conn, const std::string& pool, const std::string& ns,
    const RadosBlobOptions& blob_options = {},
    std::chrono::seconds lease = RadosStoreLock::kDefaultLease);

// For offline tools (fsck): the existing store in `pool`/`ns`, neither
// created nor marked in use. NotFound when the pool, or the store in it,
// does not exist; Busy, naming it, when a running upfs serves it (the
// store's lock, store/rados_lock.h, held by the tool until it is done).
Result<std::unique_ptr<KvStore>> OpenRadosStoreOffline(const std::string& pool,
                                                       const std::string& ns,
                                                       const RadosConnectOptions& options);

}  // namespace upfs::store
