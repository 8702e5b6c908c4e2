#include "fs/expiry_sweeper.h"

#include <exception>

#include <spdlog/spdlog.h>

namespace upfs::fs {

ExpirySweeper::ExpirySweeper(std::chrono::milliseconds interval, std::function<void()> sweep,
                             std::string what)
    : interval_(interval), sweep_(std::move(sweep)), what_(std::move(what)) {}

ExpirySweeper::~ExpirySweeper() { Stop(); }

void ExpirySweeper::Start() {
  MutexLock lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void ExpirySweeper::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void ExpirySweeper::Run() {
  // A deadline, not a relative wait, so a spurious wakeup does not push
  // the next sweep back.
  auto next = std::chrono::steady_clock::now() + interval_;
  MutexLock lock(mu_);
  for (;;) {
    while (!stopping_ && wake_.WaitUntil(mu_, next))
      continue;  // woken early, not stopping: wait on
    if (stopping_) return;
    lock.Unlock();
    try {
      sweep_();
    } catch (const std::exception& e) {
      spdlog::error("{} failed: {}", what_, e.what());
    } catch (...) {
      spdlog::error("{} failed: unknown exception", what_);
    }
    next = std::chrono::steady_clock::now() + interval_;
    lock.Lock();
  }
}

}  // namespace upfs::fs
