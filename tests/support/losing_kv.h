// LosingKv: a Kv over MemoryKv that, like RadosKv, commits with sync=false
// "in the background": CommitsInBackground() is true, and while armed such
// a commit returns OK without storing anything, its failure kept for
// TakeWriteFailure (any key: one object here). Thread-safe.
#pragma once

#include <atomic>
#include <mutex>
#include <string_view>
#include <utility>

#include "store/memory_kv.h"

namespace upfs::testing {

class LosingKv : public store::Kv {
 public:
  void LoseBackgroundCommits(bool on) { lose_ = on; }
  int flush_waits() const { return flush_waits_; }

  Status Get(std::string_view key, std::string* value) const override {
    return base_.Get(key, value);
  }
  Status Scan(std::string_view begin, std::string_view end,
              const store::KvVisitor& visit) const override {
    return base_.Scan(begin, end, visit);
  }
  Status Commit(const store::KvWrite& write, bool sync) override {
    if (!sync && lose_) {
      std::lock_guard lock(mu_);
      if (failed_.ok())
        failed_ = Status::IOError("injected loss of records committed in the background");
      return Status::OK();
    }
    return base_.Commit(write, sync);
  }
  Status Compact(std::string_view begin, std::string_view last) override {
    return base_.Compact(begin, last);
  }
  bool CommitsInBackground() const override { return true; }
  Status TakeWriteFailure(std::string_view) override {
    ++flush_waits_;
    std::lock_guard lock(mu_);
    return std::exchange(failed_, Status::OK());
  }

 private:
  store::MemoryKv base_;
  std::atomic<bool> lose_{false};
  std::atomic<int> flush_waits_{0};
  std::mutex mu_;
  Status failed_;  // GUARDED_BY(mu_)
};

}  // namespace upfs::testing
