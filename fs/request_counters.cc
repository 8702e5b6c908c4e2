#include "fs/request_counters.h"

namespace upfs::fs {

const char* FuseOpName(FuseOp op) {
  switch (op) {
    case FuseOp::kLookup:
      return "lookup";
    case FuseOp::kGetAttr:
      return "getattr";
    case FuseOp::kSetAttr:
      return "setattr";
    case FuseOp::kMknod:
      return "mknod";
    case FuseOp::kMkdir:
      return "mkdir";
    case FuseOp::kUnlink:
      return "unlink";
    case FuseOp::kRmdir:
      return "rmdir";
    case FuseOp::kSymlink:
      return "symlink";
    case FuseOp::kLink:
      return "link";
    case FuseOp::kRename:
      return "rename";
    case FuseOp::kCreate:
      return "create";
    case FuseOp::kOpen:
      return "open";
    case FuseOp::kRead:
      return "read";
    case FuseOp::kWrite:
      return "write";
    case FuseOp::kFlush:
      return "flush";
    case FuseOp::kRelease:
      return "release";
    case FuseOp::kFsync:
      return "fsync";
    case FuseOp::kOpenDir:
      return "opendir";
    case FuseOp::kReadDir:
      return "readdir";
    case FuseOp::kReadDirPlus:
      return "readdirplus";
    case FuseOp::kReleaseDir:
      return "releasedir";
    case FuseOp::kFsyncDir:
      return "fsyncdir";
    case FuseOp::kStatFs:
      return "statfs";
    case FuseOp::kSetXattr:
      return "setxattr";
    case FuseOp::kGetXattr:
      return "getxattr";
    case FuseOp::kListXattr:
      return "listxattr";
    case FuseOp::kRemoveXattr:
      return "removexattr";
  }
  return "?";
}

RequestCounters::Snapshot RequestCounters::Take() const {
  Snapshot s;
  for (size_t op = 0; op < kFuseOpCount; ++op) {
    s.requests[op] = requests_[op].load(std::memory_order_relaxed);
    for (int err = 0; err < kErrnoLimit; ++err) {
      const uint64_t n = errors_[op][static_cast<size_t>(err)].load(std::memory_order_relaxed);
      if (n != 0) s.errors.push_back({static_cast<FuseOp>(op), err, n});
    }
  }
  return s;
}

}  // namespace upfs::fs
