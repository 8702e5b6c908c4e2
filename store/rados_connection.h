// RadosConnection: one librados client connected to a cluster, and the
// conversion of librados' negative errnos into upfs Status codes. Shared
// (std::shared_ptr) by the RADOS backend's RadosKv and RadosBlobFiles; the
// only header besides them that includes librados.
//
// Thread safety: librados' Rados and IoCtx are thread-safe; so is this.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <rados/librados.hpp>

#include "base/status.h"
#include "store/rados_options.h"

namespace upfs::store {

class RadosConnection {
 public:
  // Connects as client.<ceph_id>. IOError (with librados' reason) when the
  // configuration cannot be read or the cluster does not answer in time.
  static Result<std::shared_ptr<RadosConnection>> Connect(const RadosConnectOptions& options);
  ~RadosConnection();
  RadosConnection(const RadosConnection&) = delete;
  RadosConnection& operator=(const RadosConnection&) = delete;

  // An I/O context on `pool`, in RADOS namespace `ns` ("" : the default
  // one). NotFound when the pool does not exist.
  Result<librados::IoCtx> OpenPool(const std::string& pool, const std::string& ns);

  librados::Rados& rados() { return rados_; }

 private:
  RadosConnection() = default;
  librados::Rados rados_;
  bool connected_ = false;
};

// A librados result (a negative errno) as a Status: ENOENT -> NotFound,
// ENOSPC and EDQUOT (full cluster, pool quota) -> NoSpace, EFBIG (an
// object past osd_max_object_size) -> TooLarge, anything else
// (ETIMEDOUT included: the cluster did not answer) -> IOError. `what` says
// which call on which object.
Status FromRados(int rc, std::string_view what);

}  // namespace upfs::store
