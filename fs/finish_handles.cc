#include "fs/finish_handles.h"

namespace upfs::fs {

void FinishHandles::Opened(uint64_t handle, uint64_t ino, pid_t tid) {
  State state;
  state.ino = ino;
  if (processes_ != nullptr) state.opener = processes_->ProcessOf(tid);
  MutexLock lock(mu_);
  handles_[handle] = state;
  open_count_.store(handles_.size(), std::memory_order_release);
}

void FinishHandles::Wrote(uint64_t handle) {
  // A .finish handle is registered before the kernel is given it, so no
  // write through it can come earlier: zero means this is not a .finish.
  if (open_count_.load(std::memory_order_acquire) == 0) return;
  MutexLock lock(mu_);
  auto it = handles_.find(handle);
  if (it != handles_.end()) it->second.wrote = true;
}

FinishHandles::Flush FinishHandles::OnFlush(uint64_t handle, pid_t tid) {
  State state;
  {
    MutexLock lock(mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end()) return Flush::kCommit;
    if (it->second.committed) return Flush::kRepeat;
    state = it->second;
  }
  if (!state.wrote && !IsOpenersLastClose(state, tid)) return Flush::kWait;
  MutexLock lock(mu_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return Flush::kCommit;  // released meanwhile: cannot happen
  // Two flushes racing here both commit; the engine runs the commit once
  // per handle and gives both the same result.
  it->second.committed = true;
  return Flush::kCommit;
}

bool FinishHandles::IsOpenersLastClose(const State& state, pid_t tid) const {
  // /proc is read outside the lock.
  if (processes_ == nullptr || !state.opener) return false;
  const std::optional<pid_t> closer = processes_->ProcessOf(tid);
  if (!closer || *closer != *state.opener) return false;
  const std::optional<bool> still_open = processes_->HasOpen(*state.opener, state.ino);
  return still_open.has_value() && !*still_open;
}

bool FinishHandles::Released(uint64_t handle) noexcept {
  MutexLock lock(mu_);
  auto it = handles_.find(handle);
  if (it == handles_.end()) return false;
  const bool committed = it->second.committed;
  handles_.erase(it);
  open_count_.store(handles_.size(), std::memory_order_release);
  return committed;
}

}  // namespace upfs::fs
