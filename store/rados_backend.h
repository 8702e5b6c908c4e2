// The RADOS backend, loaded when a rados:// store is opened.
//
// librados and the Ceph libraries it pulls in cost every process that
// maps them about 12 MiB of memory and 40 ms of start-up (relocations and
// static constructors; docs/performance.md), so the program is not linked
// with them: the backend (store/rados_*.cc, with librados) is a module of
// its own, upfs-rados.so, which these functions load with dlopen the first
// time a process opens a RADOS store. A mount or fsck of a directory never
// maps librados.
//
// The module is looked for beside the program (the build tree) and in
// UPFS_RADOS_MODULE_DIR relative to it (the installed tree, e.g.
// bin/../lib/upfs). It resolves upfs's own symbols from the program (which
// exports them), so the two must come from one build: a module of another
// version is refused.
//
// Thread safety: safe to call from any thread; the module is loaded once.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "store/kv_store.h"
#include "store/rados_options.h"
#include "store/store.h"

namespace upfs::store {

// As OpenRadosStore (store/rados_store.h), through the module. IOError
// naming the module and dlopen's reason when it cannot be loaded.
Result<std::unique_ptr<Store>> OpenRadosBackend(const std::string& pool, const std::string& ns,
                                                const RadosStoreOptions& options);

// As OpenRadosStoreOffline, through the module.
Result<std::unique_ptr<KvStore>> OpenRadosBackendOffline(const std::string& pool,
                                                         const std::string& ns,
                                                         const RadosConnectOptions& options);

// What the module exports: upfs_rados_module() returns its table.
struct RadosModuleApi {
  const char* version;  // UPFS_VERSION of its build
  size_t api_size;      // sizeof(RadosModuleApi) in its build
  Result<std::unique_ptr<Store>> (*open)(const std::string& pool, const std::string& ns,
                                         const RadosStoreOptions& options);
  Result<std::unique_ptr<KvStore>> (*open_offline)(const std::string& pool, const std::string& ns,
                                                   const RadosConnectOptions& options);
};
inline constexpr const char* kRadosModuleFile = "upfs-rados.so";
inline constexpr const char* kRadosModuleSymbol = "upfs_rados_module";

}  // namespace upfs::store
