#include "store/rados_store.h"

#include <spdlog/spdlog.h>

#include <ctime>

namespace upfs::store {

Result<std::unique_ptr<Store>> OpenRadosStore(const std::string& pool, const std::string& ns,
                                              const RadosStoreOptions& options) {
  auto conn = RadosConnection::Connect(options.connect);
  UPFS_RETURN_IF_ERROR(conn.status());
  return OpenRadosStore(std::move(conn).value(), pool, ns, options.blobs);
}

Result<std::unique_ptr<Store>> OpenRadosStore(std::shared_ptr<RadosConnection> conn, const std::string& pool,
                                              const std::string& ns, const RadosBlobOptions& blob_options) {
  const std::string where = "rados pool " + pool + (ns.empty() ? "" : " namespace " + ns);
  auto io = conn->OpenPool(pool, ns);
  UPFS_RETURN_IF_ERROR(io.status().WithContext(where));
  uint64_t size = 0;
  time_t mtime = 0;
  const int rc = io->stat(RadosKv::kMetaObject, &size, &mtime);
  const bool create = rc == -ENOENT;
  if (!create) UPFS_RETURN_IF_ERROR(FromRados(rc, std::string("stat of ") + RadosKv::kMetaObject).WithContext(where));

  auto kv = RadosKv::Open(conn, pool, ns);
  UPFS_RETURN_IF_ERROR(kv.status().WithContext(where));
  auto blobs = RadosBlobFiles::Open(conn, pool, ns, blob_options);
  UPFS_RETURN_IF_ERROR(blobs.status().WithContext(where));
  auto store = KvStore::Open(std::move(kv).value(), std::move(blobs).value(), create);
  UPFS_RETURN_IF_ERROR(store.status().WithContext(where));
  Result<uint64_t> dropped = (*store)->BeginUse();
  UPFS_RETURN_IF_ERROR(dropped.status().WithContext(where));
  if (*dropped > 0) spdlog::warn("store {}: {} chunks of open sessions were lost in a crash", where, *dropped);
  return std::unique_ptr<Store>(std::move(store).value());
}

}  // namespace upfs::store
