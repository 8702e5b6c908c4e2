#include "fs/inode_table.h"

namespace upfs::fs {

void InodeTable::Add(uint64_t id, uint64_t n) {
  if (n == 0) return;
  MutexLock lock(mu_);
  lookups_[id] += n;
}

uint64_t InodeTable::Forget(uint64_t id, uint64_t n, uint64_t* over) noexcept {
  if (over != nullptr) *over = 0;
  MutexLock lock(mu_);
  auto it = lookups_.find(id);
  if (it == lookups_.end()) {
    if (over != nullptr) *over = n;
    return 0;
  }
  if (n >= it->second) {
    if (over != nullptr) *over = n - it->second;
    lookups_.erase(it);
    return 0;
  }
  it->second -= n;
  return it->second;
}

uint64_t InodeTable::Count(uint64_t id) const {
  MutexLock lock(mu_);
  auto it = lookups_.find(id);
  return it == lookups_.end() ? 0 : it->second;
}

size_t InodeTable::LiveCount() const {
  MutexLock lock(mu_);
  return lookups_.size();
}

}  // namespace upfs::fs
