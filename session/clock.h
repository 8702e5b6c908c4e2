// Clock: where the session engine gets the time, so tests can move it.
//
// Thread safety: implementations must be safe to call from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace upfs::session {

class Clock {
 public:
  virtual ~Clock() = default;
  // Nanoseconds since the Unix epoch.
  virtual int64_t NowNs() const = 0;
};

// The system's real-time clock.
class SystemClock : public Clock {
 public:
  int64_t NowNs() const override;
};

// A clock that moves only when told; for tests.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns) {}
  int64_t NowNs() const override { return now_.load(); }
  void Advance(int64_t ns) { now_ += ns; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace upfs::session
