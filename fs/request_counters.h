// RequestCounters: how many requests of each FUSE operation this mount
// served, and how many of them failed with each errno, for metrics
// (-o metrics_file). UpfsFs's one funnel (Serve, ReplyFailure) counts every
// request a handler answers; forget, which has no answer, is not counted.
//
// Thread safety: Count and CountError may run on every worker thread at
// once: each is one relaxed atomic increment (the write path pays one per
// request; docs/configuration.md, "Metrics", measures it). Snapshot reads without locks,
// so it is not one instant.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace upfs::fs {

// The operations UpfsFs serves, as named in the log and in metrics.
enum class FuseOp : uint8_t {
  kLookup,
  kGetAttr,
  kSetAttr,
  kMknod,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kLink,
  kRename,
  kCreate,
  kOpen,
  kRead,
  kWrite,
  kFlush,
  kRelease,
  kFsync,
  kOpenDir,
  kReadDir,
  kReadDirPlus,
  kReleaseDir,
  kFsyncDir,
  kStatFs,
  kSetXattr,
  kGetXattr,
  kListXattr,
  kRemoveXattr,
};
inline constexpr size_t kFuseOpCount = static_cast<size_t>(FuseOp::kRemoveXattr) + 1;

// "lookup", "getattr", ... (libfuse's names of the operations).
const char* FuseOpName(FuseOp op);

class RequestCounters {
 public:
  // errnos below this are counted by number; larger ones (none upfs
  // returns) together under kOtherErrno.
  static constexpr int kErrnoLimit = 134;
  static constexpr int kOtherErrno = 0;

  void Count(FuseOp op) { requests_[Index(op)].fetch_add(1, std::memory_order_relaxed); }
  void CountError(FuseOp op, int err) {
    errors_[Index(op)][err > 0 && err < kErrnoLimit ? err : kOtherErrno].fetch_add(
        1, std::memory_order_relaxed);
  }

  struct Error {
    FuseOp op;
    int err;  // kOtherErrno: one beyond kErrnoLimit
    uint64_t count;
  };
  struct Snapshot {
    std::array<uint64_t, kFuseOpCount> requests{};  // by FuseOp
    std::vector<Error> errors;                      // those counted at least once, by op then errno
  };
  Snapshot Take() const;

 private:
  static size_t Index(FuseOp op) { return static_cast<size_t>(op); }

  std::array<std::atomic<uint64_t>, kFuseOpCount> requests_{};
  std::array<std::array<std::atomic<uint64_t>, kErrnoLimit>, kFuseOpCount> errors_{};
};

}  // namespace upfs::fs
