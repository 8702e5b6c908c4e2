#include "fs/cache_invalidator.h"

#include <cerrno>
#include <cstring>
#include <exception>

#include <spdlog/spdlog.h>

namespace upfs::fs {
namespace {

const char* KindName(Invalidation::Kind kind) {
  return kind == Invalidation::Kind::kEntry ? "entry" : "inode";
}

}  // namespace

CacheInvalidator::CacheInvalidator(Sender send) : send_(std::move(send)) {
  thread_ = std::thread([this] { Run(); });
}

CacheInvalidator::~CacheInvalidator() { Stop(); }

bool CacheInvalidator::Submit(std::vector<Invalidation> batch, std::chrono::milliseconds wait) {
  auto job = std::make_shared<Job>();
  job->batch = std::move(batch);
  std::future<void> sent = job->sent.get_future();
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    queue_.push_back(job);
  }
  wake_.Signal();
  if (wait.count() <= 0) return false;
  return sent.wait_for(wait) == std::future_status::ready;
}

void CacheInvalidator::Stop() {
  std::deque<std::shared_ptr<Job>> dropped;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  wake_.Signal();
  // Wake any submitter still waiting: its batch will never be sent.
  for (auto& job : dropped) job->sent.set_value();
  if (thread_.joinable()) thread_.join();
}

void CacheInvalidator::Run() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) wake_.Wait(mu_);
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    for (const Invalidation& inv : job->batch) {
      int rc = 0;
      try {
        rc = send_(inv);
      } catch (const std::exception& e) {
        // An exception must not end this thread (std::terminate).
        spdlog::error("cache invalidation of {} {} '{}': unexpected exception: {}",
                      KindName(inv.kind), inv.ino, inv.name, e.what());
        continue;
      }
      if (rc == 0 || rc == -ENOENT) {
        // -ENOENT: the kernel had nothing cached under that name or inode.
        spdlog::debug("cache invalidation of {} {} '{}': {}", KindName(inv.kind), inv.ino, inv.name,
                      rc == 0 ? "dropped" : "not cached");
      } else {
        // The kernel may serve stale entries until their timeouts expire.
        spdlog::warn("cache invalidation of {} {} '{}' failed: {}", KindName(inv.kind), inv.ino,
                     inv.name, std::strerror(-rc));
      }
    }
    job->sent.set_value();
  }
}

}  // namespace upfs::fs
