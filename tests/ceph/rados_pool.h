// RadosPool: one librados connection and an I/O context on one pool, for
// the small programs in tests/ceph (rados_smoke, rados_latency). Not the
// store's backend: those programs only check and measure librados itself.
//
// Thread safety: as librados' Rados and IoCtx (an IoCtx is not shared
// between threads here).
#pragma once

#include <cstring>
#include <string>

#include <rados/librados.hpp>

namespace upfs::testing {

// A librados call failed: which one, and its negative errno.
inline std::string RadosError(const std::string& what, int rc) {
  return what + ": " + std::strerror(-rc) + " (" + std::to_string(rc) + ")";
}

class RadosPool {
 public:
  RadosPool() = default;
  RadosPool(const RadosPool&) = delete;
  RadosPool& operator=(const RadosPool&) = delete;
  ~RadosPool() {
    io_.close();
    if (connected_) cluster_.shutdown();
  }

  // Connects as client.ID with the configuration at CONF (empty: librados'
  // own search: $CEPH_CONF, /etc/ceph/ceph.conf, ...) and opens POOL.
  // Returns an empty string on success, else what failed.
  std::string Open(const std::string& conf, const std::string& id, const std::string& pool) {
    int rc = cluster_.init(id.c_str());
    if (rc < 0) return RadosError("init client." + id, rc);
    rc = cluster_.conf_read_file(conf.empty() ? nullptr : conf.c_str());
    if (rc < 0) return RadosError("read conf " + conf, rc);
    rc = cluster_.connect();
    if (rc < 0) return RadosError("connect", rc);
    connected_ = true;
    rc = cluster_.ioctx_create(pool.c_str(), io_);
    if (rc < 0) return RadosError("open pool " + pool, rc);
    return {};
  }

  librados::IoCtx& io() { return io_; }

 private:
  librados::Rados cluster_;
  librados::IoCtx io_;
  bool connected_ = false;
};

}  // namespace upfs::testing
