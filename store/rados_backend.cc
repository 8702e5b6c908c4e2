#include "store/rados_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>

#include <spdlog/spdlog.h>

namespace upfs::store {
namespace {

// The directory of the running program ("" if /proc/self/exe is unreadable).
std::string ProgramDir() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  const std::string exe(path, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

struct Loaded {
  const RadosModuleApi* api = nullptr;
  Status status;
};

// Loads the module once per process; the handle is never closed (librados
// keeps threads and static state that outlive any one store).
const Loaded& Load() {
  static const Loaded loaded = [] {
    Loaded out;
    const std::string dir = ProgramDir();
    std::string reasons;
    void* handle = nullptr;
    for (const std::string& candidate :
         {dir + "/" + kRadosModuleFile, dir + "/" UPFS_RADOS_MODULE_DIR "/" + kRadosModuleFile}) {
      // RTLD_NOW: a symbol missing from the program fails here, not in
      // the middle of a request.
      handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) {
        spdlog::debug("loaded the RADOS backend from {}", candidate);
        break;
      }
      reasons += std::string(reasons.empty() ? "" : "; ") + dlerror();
    }
    if (!handle) {
      out.status = Status::IOError("the RADOS backend (" + std::string(kRadosModuleFile) +
                                   ", beside the program or in " + dir +
                                   "/" UPFS_RADOS_MODULE_DIR ") cannot be loaded: " + reasons);
      return out;
    }
    auto entry = reinterpret_cast<const RadosModuleApi* (*)()>(dlsym(handle, kRadosModuleSymbol));
    const RadosModuleApi* api = entry ? entry() : nullptr;
    if (!api) {
      out.status = Status::IOError(std::string(kRadosModuleFile) + " has no " + kRadosModuleSymbol +
                                   ": not a upfs RADOS backend");
    } else if (std::string(api->version) != UPFS_VERSION ||
               api->api_size != sizeof(RadosModuleApi)) {
      out.status =
          Status::IOError(std::string(kRadosModuleFile) + " is of upfs " + api->version +
                          ", this program of upfs " UPFS_VERSION ": install both from one build");
    } else {
      out.api = api;
    }
    return out;
  }();
  return loaded;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenRadosBackend(const std::string& pool, const std::string& ns,
                                                const RadosStoreOptions& options) {
  const Loaded& m = Load();
  if (!m.api) return m.status;
  return m.api->open(pool, ns, options);
}

Result<std::unique_ptr<KvStore>> OpenRadosBackendOffline(const std::string& pool,
                                                         const std::string& ns,
                                                         const RadosConnectOptions& options) {
  const Loaded& m = Load();
  if (!m.api) return m.status;
  return m.api->open_offline(pool, ns, options);
}

}  // namespace upfs::store
