// CacheInvalidator: batches go out in order on its own thread; a submitter
// waits with a bound, so a kernel that blocks cannot block it for good.
#include "fs/cache_invalidator.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

namespace upfs::fs {
namespace {

using namespace std::chrono_literals;

// A fake kernel: records what it was sent; can be made to block.
class FakeKernel {
 public:
  int Send(const Invalidation& inv) {
    std::unique_lock<std::mutex> lock(mu_);
    blocked_cv_.wait(lock, [this] { return !blocked_; });
    sent_.push_back(inv.kind == Invalidation::Kind::kEntry
                        ? "entry " + std::to_string(inv.ino) + "/" + inv.name
                        : "inode " + std::to_string(inv.ino));
    sent_cv_.notify_all();
    return result_;
  }
  void Block(bool blocked) {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = blocked;
    blocked_cv_.notify_all();
  }
  void FailWith(int result) {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = result;
  }
  bool WaitForCount(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return sent_cv_.wait_for(lock, 10s, [&] { return sent_.size() >= n; });
  }
  std::vector<std::string> sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }

 private:
  std::mutex mu_;
  std::condition_variable blocked_cv_;
  std::condition_variable sent_cv_;
  bool blocked_ = false;
  int result_ = 0;
  std::vector<std::string> sent_;
};

TEST_CASE("CacheInvalidator sends batches in order and reports when they are sent") {
  FakeKernel kernel;
  CacheInvalidator invalidator([&](const Invalidation& inv) { return kernel.Send(inv); });
  CHECK(invalidator.Submit({Invalidation::Entry(2, "a"), Invalidation::Inode(2)}, 10s));
  CHECK(invalidator.Submit({Invalidation::Entry(3, "b")}, 10s));
  CHECK(kernel.sent() == std::vector<std::string>{"entry 2/a", "inode 2", "entry 3/b"});
}

TEST_CASE("CacheInvalidator keeps going when the kernel reports errors") {
  FakeKernel kernel;
  kernel.FailWith(-ENOENT);
  CacheInvalidator invalidator([&](const Invalidation& inv) { return kernel.Send(inv); });
  CHECK(invalidator.Submit({Invalidation::Inode(3)}, 10s));
  kernel.FailWith(-EIO);
  CHECK(invalidator.Submit({Invalidation::Inode(4)}, 10s));
  CHECK(kernel.sent().size() == 2);
}

TEST_CASE("CacheInvalidator: a blocked kernel makes Submit time out, and the batch follows later") {
  FakeKernel kernel;
  kernel.Block(true);
  CacheInvalidator invalidator([&](const Invalidation& inv) { return kernel.Send(inv); });
  CHECK_FALSE(invalidator.Submit({Invalidation::Entry(2, "slow")}, 20ms));
  kernel.Block(false);
  REQUIRE(kernel.WaitForCount(1));
  CHECK(kernel.sent() == std::vector<std::string>{"entry 2/slow"});
}

TEST_CASE("CacheInvalidator: Submit without waiting only queues") {
  FakeKernel kernel;
  CacheInvalidator invalidator([&](const Invalidation& inv) { return kernel.Send(inv); });
  CHECK_FALSE(invalidator.Submit({Invalidation::Inode(9)}, 0ms));
  REQUIRE(kernel.WaitForCount(1));
}

TEST_CASE("CacheInvalidator: Stop drops queued batches, wakes their waiters, refuses new ones") {
  FakeKernel kernel;
  kernel.Block(true);
  CacheInvalidator invalidator([&](const Invalidation& inv) { return kernel.Send(inv); });
  invalidator.Submit({Invalidation::Entry(2, "first")}, 0ms);  // taken, blocks in the kernel
  invalidator.Submit({Invalidation::Entry(2, "dropped")}, 0ms);
  std::thread stopper([&] { invalidator.Stop(); });
  // Stop waits for the send in progress; let it finish.
  std::this_thread::sleep_for(10ms);
  kernel.Block(false);
  stopper.join();
  const auto sent = kernel.sent();
  CHECK(std::find(sent.begin(), sent.end(), "entry 2/dropped") == sent.end());
  CHECK_FALSE(invalidator.Submit({Invalidation::Inode(5)}, 1s));
  const auto after = kernel.sent();
  CHECK(std::find(after.begin(), after.end(), "inode 5") == after.end());
}

}  // namespace
}  // namespace upfs::fs
