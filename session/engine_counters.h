// EngineCounters: the counters behind Engine::GetStats (metrics), kept by
// the parts of the engine where things happen: writes add the bytes they
// received, finishes their outcome and duration, pre_commit its runs.
//
// Thread safety: every method may be called from any thread. Each counter
// is a relaxed atomic: a snapshot is not one instant (a commit may be
// counted before its bytes are), which metrics scraped every few seconds
// do not need. The write path adds one relaxed increment per write.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <iterator>

#include "base/status.h"
#include "session/engine.h"

namespace upfs::session {

class EngineCounters {
 public:
  // Codes up to and including the last one (base/status.h).
  static constexpr size_t kCodes = static_cast<size_t>(Status::Code::kQuotaExceeded) + 1;
  static constexpr size_t kBuckets = std::size(Engine::kFinishBuckets) + 1;

  void Received(uint64_t bytes) { bytes_received_.fetch_add(bytes, std::memory_order_relaxed); }

  // A finish ended with `result` after `duration_ns`; `bytes` committed
  // when it succeeded.
  void Finished(const Status& result, uint64_t bytes, int64_t duration_ns) {
    if (result.ok()) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      bytes_committed_.fetch_add(bytes, std::memory_order_relaxed);
    } else {
      const auto code = static_cast<size_t>(result.code());
      failed_[code < kCodes ? code : static_cast<size_t>(Status::Code::kIOError)].fetch_add(
          1, std::memory_order_relaxed);
    }
    const double seconds = static_cast<double>(duration_ns < 0 ? 0 : duration_ns) / 1e9;
    size_t bucket = 0;
    while (bucket < std::size(Engine::kFinishBuckets) && seconds > Engine::kFinishBuckets[bucket])
      ++bucket;
    buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
    finish_ns_.fetch_add(static_cast<uint64_t>(duration_ns < 0 ? 0 : duration_ns),
                         std::memory_order_relaxed);
  }

  void PreCommitRan(bool refused) {
    pre_commit_runs_.fetch_add(1, std::memory_order_relaxed);
    if (refused) pre_commit_refusals_.fetch_add(1, std::memory_order_relaxed);
  }

  // Fills the counters of `out` (not the gauges, nor what other parts of
  // the engine count: quota refusals, post_commit).
  void Fill(Engine::Stats* out) const {
    out->commits = commits_.load(std::memory_order_relaxed);
    out->failed_finishes.clear();
    for (const auto& n : failed_) out->failed_finishes.push_back(n.load(std::memory_order_relaxed));
    out->bytes_received = bytes_received_.load(std::memory_order_relaxed);
    out->bytes_committed = bytes_committed_.load(std::memory_order_relaxed);
    out->finish_buckets.clear();
    for (const auto& n : buckets_) out->finish_buckets.push_back(n.load(std::memory_order_relaxed));
    out->finish_seconds_sum = static_cast<double>(finish_ns_.load(std::memory_order_relaxed)) / 1e9;
    out->pre_commit_runs = pre_commit_runs_.load(std::memory_order_relaxed);
    out->pre_commit_refusals = pre_commit_refusals_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> commits_{0};
  std::array<std::atomic<uint64_t>, kCodes> failed_{};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_committed_{0};
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> finish_ns_{0};
  std::atomic<uint64_t> pre_commit_runs_{0};
  std::atomic<uint64_t> pre_commit_refusals_{0};
};

}  // namespace upfs::session
