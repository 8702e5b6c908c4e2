// The entry point of upfs-rados.so, the RADOS backend as a module
// (store/rados_backend.h says why and how it is loaded).
#include "store/rados_backend.h"
#include "store/rados_store.h"

namespace {

using upfs::Result;
using namespace upfs::store;

Result<std::unique_ptr<Store>> Open(const std::string& pool, const std::string& ns,
                                    const RadosStoreOptions& options) {
  return OpenRadosStore(pool, ns, options);
}

Result<std::unique_ptr<KvStore>> OpenOffline(const std::string& pool, const std::string& ns,
                                             const RadosConnectOptions& options) {
  return OpenRadosStoreOffline(pool, ns, options);
}

constexpr RadosModuleApi kApi = {UPFS_VERSION, sizeof(RadosModuleApi), &Open, &OpenOffline};

}  // namespace

extern "C" __attribute__((visibility("default"))) const RadosModuleApi* upfs_rados_module() {
  return &kApi;
}
