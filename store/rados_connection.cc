#include "store/rados_connection.h"

#include <cerrno>
#include <cstring>

namespace upfs::store {

Status FromRados(int rc, std::string_view what) {
  if (rc >= 0) return Status::OK();
  const int err = -rc;
  std::string msg = std::string(what) + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status::NotFound(msg);
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(msg);
    case EFBIG:  // past osd_max_object_size
      return Status::TooLarge(msg);
    case ETIMEDOUT:
      return Status::IOError(msg + " (the cluster did not answer within rados_osd_op_timeout)");
    default:
      return Status::IOError(msg);
  }
}

Result<std::shared_ptr<RadosConnection>> RadosConnection::Connect(
    const RadosConnectOptions& options) {
  std::shared_ptr<RadosConnection> conn(new RadosConnection());
  librados::Rados& rados = conn->rados_;
  UPFS_RETURN_IF_ERROR(
      FromRados(rados.init(options.ceph_id.c_str()), "initializing client." + options.ceph_id));
  const char* conf = options.ceph_conf.empty() ? nullptr : options.ceph_conf.c_str();
  UPFS_RETURN_IF_ERROR(
      FromRados(rados.conf_read_file(conf), "reading the Ceph configuration " + options.ceph_conf));
  const std::string seconds = std::to_string(options.timeout.count());
  for (const char* key : {"rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"}) {
    UPFS_RETURN_IF_ERROR(
        FromRados(rados.conf_set(key, seconds.c_str()), std::string("setting ") + key));
  }
  UPFS_RETURN_IF_ERROR(
      FromRados(rados.connect(), "connecting to the Ceph cluster as client." + options.ceph_id));
  conn->connected_ = true;
  return conn;
}

RadosConnection::~RadosConnection() {
  if (connected_) rados_.shutdown();
}

Result<librados::IoCtx> RadosConnection::OpenPool(const std::string& pool, const std::string& ns) {
  librados::IoCtx io;
  UPFS_RETURN_IF_ERROR(FromRados(rados_.ioctx_create(pool.c_str(), io), "opening pool " + pool));
  io.set_namespace(ns);
  return io;
}

}  // namespace upfs::store
