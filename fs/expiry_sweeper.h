// ExpirySweeper: runs a sweep (expiring idle sessions; also the metrics
// file's update) every interval on a thread of its own, and stops promptly
// when asked.
//
// The sweep itself is the caller's (UpfsFs::SweepExpiredSessions in the
// daemon); this class only owns the timing and the thread, so it is tested
// without a mount. Stop() interrupts the wait at once (condition variable,
// no polling) and waits for a sweep in progress to finish.
//
// Thread safety: Start and Stop may be called from any thread, but not
// concurrently with each other.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/mutex.h"

namespace upfs::fs {

class ExpirySweeper {
 public:
  // `sweep` must not throw; if it does, the exception is logged and the
  // sweeper keeps going.
  // `what` names the task in the log ("expiry sweep", "metrics file").
  ExpirySweeper(std::chrono::milliseconds interval, std::function<void()> sweep,
                std::string what = "expiry sweep");
  // Stop()s.
  ~ExpirySweeper();
  ExpirySweeper(const ExpirySweeper&) = delete;
  ExpirySweeper& operator=(const ExpirySweeper&) = delete;

  // Starts the thread; the first sweep runs one interval from now.
  void Start();
  // Ends the thread; returns after any sweep in progress. Idempotent.
  void Stop();

 private:
  void Run();

  const std::chrono::milliseconds interval_;
  const std::function<void()> sweep_;
  const std::string what_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace upfs::fs
