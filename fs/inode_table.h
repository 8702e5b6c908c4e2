// InodeTable: how many lookups the kernel holds on each inode.
//
// The FUSE protocol counts references: every reply that hands the kernel
// an inode (lookup, mkdir, create, mknod, a readdirplus entry) adds one,
// and `forget` later returns them. upfs inodes are engine ids, which the
// engine resolves on its own, so nothing is freed at zero; the table
// exists so the accounting is exact and visible (a leak shows up as ids
// that never reach zero, see LiveCount()).
//
// Rules the callers follow (fs/upfs_fs.cc):
//   * Add before the reply is sent: the kernel may forget an inode on
//     another thread as soon as it has the reply.
//   * If the reply could not be delivered (fuse_reply_* == -ENOENT, the
//     request was interrupted), Forget what was added: the kernel never
//     saw it.
//   * The root inode is never counted; the kernel never forgets it.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "base/mutex.h"

namespace upfs::fs {

class InodeTable {
 public:
  InodeTable() = default;
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // Records `n` more kernel references to `id`.
  void Add(uint64_t id, uint64_t n = 1);

  // Drops `n` references to `id` and returns how many remain. Dropping more
  // than are held (a protocol or accounting bug) drops them all and returns
  // the shortfall through `*over` when given. Never throws.
  uint64_t Forget(uint64_t id, uint64_t n, uint64_t* over = nullptr) noexcept;

  // References currently held on `id`.
  uint64_t Count(uint64_t id) const;
  // Number of ids with at least one reference.
  size_t LiveCount() const;

 private:
  mutable Mutex mu_;
  std::unordered_map<uint64_t, uint64_t> lookups_ GUARDED_BY(mu_);  // no zeros
};

}  // namespace upfs::fs
