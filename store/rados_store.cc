#include "store/rados_store.h"

#include <ctime>

#include <spdlog/spdlog.h>

#include "store/records.h"

namespace upfs::store {

Result<std::unique_ptr<Store>> OpenRadosStore(const std::string& pool, const std::string& ns,
                                              const RadosStoreOptions& options) {
  UPFS_ASSIGN_OR_RETURN(auto conn, RadosConnection::Connect(options.connect));
  return OpenRadosStore(std::move(conn), pool, ns, options.blobs, options.lease);
}

namespace {

// The store's KvStore; creates it when `create_missing` and the pool has
// no store yet, else NotFound.
Result<std::unique_ptr<KvStore>> OpenKvStore(std::shared_ptr<RadosConnection> conn,
                                             const std::string& pool, const std::string& ns,
                                             const RadosBlobOptions& blob_options,
                                             bool create_missing, const std::string& where,
                                             std::chrono::seconds lease) {
  auto io = conn->OpenPool(pool, ns);
  UPFS_RETURN_IF_ERROR(io.status().WithContext(where));
  uint64_t size = 0;
  time_t mtime = 0;
  const int rc = io->stat(RadosKv::kMetaObject, &size, &mtime);
  const bool create = rc == -ENOENT;
  if (create && !create_missing) return Status::NotFound(where + " holds no upfs store");
  if (!create)
    UPFS_RETURN_IF_ERROR(
        FromRados(rc, std::string("stat of ") + RadosKv::kMetaObject).WithContext(where));

  // Before anything is read or rolled forward: another process may be
  // serving the store.
  UPFS_ASSIGN_OR_RETURN(
      std::shared_ptr<RadosStoreLock> held,
      RadosStoreLock::Acquire(conn, pool, ns, create_missing ? "mount" : "fsck", lease));
  auto kv = RadosKv::Open(conn, pool, ns, held);
  UPFS_RETURN_IF_ERROR(kv.status().WithContext(where));
  // Format 5 kept extent keys under another tag, so RadosKv put them in
  // objects where this one does not look for them: KvStore's upgrade would
  // find none to move. Only development builds wrote RADOS stores of format 5.
  std::string format;
  if ((*kv)->Get(keys::kFormatKey, &format).ok() && format == keys::kFormatExtentsAmongRecords) {
    return Status::InvalidArgument(
        where + " holds a store of format '" + format +
        "', written by a development build of the RADOS backend; this upfs reads '" +
        std::string(keys::kFormatValue) +
        "' only there: copy the assets out with the upfs that wrote it");
  }
  auto blobs = RadosBlobFiles::Open(conn, pool, ns, blob_options, held);
  UPFS_RETURN_IF_ERROR(blobs.status().WithContext(where));
  // A mount shares the store with other mounts; fsck has it to itself.
  auto store = KvStore::Open(std::move(kv).value(), std::move(blobs).value(), create,
                             create_missing ? held : nullptr);
  UPFS_RETURN_IF_ERROR(store.status().WithContext(where));
  return store;
}

std::string Where(const std::string& pool, const std::string& ns) {
  return "rados pool " + pool + (ns.empty() ? "" : " namespace " + ns);
}

}  // namespace

Result<std::unique_ptr<Store>> OpenRadosStore(std::shared_ptr<RadosConnection> conn,
                                              const std::string& pool, const std::string& ns,
                                              const RadosBlobOptions& blob_options,
                                              std::chrono::seconds lease) {
  const std::string where = Where(pool, ns);
  UPFS_ASSIGN_OR_RETURN(auto store, OpenKvStore(std::move(conn), pool, ns, blob_options,
                                                /*create_missing=*/true, where, lease));
  Result<uint64_t> dropped = store->BeginUse();
  UPFS_RETURN_IF_ERROR(dropped.status().WithContext(where));
  if (*dropped > 0)
    spdlog::warn("store {}: {} chunks of open sessions were lost in a crash", where, *dropped);
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<KvStore>> OpenRadosStoreOffline(const std::string& pool,
                                                       const std::string& ns,
                                                       const RadosConnectOptions& options) {
  UPFS_ASSIGN_OR_RETURN(auto conn, RadosConnection::Connect(options));
  return OpenKvStore(std::move(conn), pool, ns, {}, /*create_missing=*/false, Where(pool, ns),
                     RadosStoreLock::kDefaultLease);
}

}  // namespace upfs::store
