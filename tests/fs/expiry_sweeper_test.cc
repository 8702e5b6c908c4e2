// ExpirySweeper: sweeps every interval, and stops at once (no waiting out
// the interval).
#include "fs/expiry_sweeper.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

namespace upfs::fs {
namespace {

using namespace std::chrono_literals;

TEST_CASE("ExpirySweeper sweeps repeatedly until stopped") {
  std::mutex mu;
  std::condition_variable swept;
  int sweeps = 0;
  ExpirySweeper sweeper(5ms, [&] {
    std::lock_guard<std::mutex> lock(mu);
    ++sweeps;
    swept.notify_all();
  });
  sweeper.Start();
  {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(swept.wait_for(lock, 10s, [&] { return sweeps >= 3; }));
  }
  sweeper.Stop();
  int after_stop = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    after_stop = sweeps;
  }
  std::this_thread::sleep_for(30ms);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(sweeps == after_stop);
}

TEST_CASE("ExpirySweeper stops without waiting out a long interval") {
  std::atomic<int> sweeps{0};
  ExpirySweeper sweeper(std::chrono::hours(1), [&] { ++sweeps; });
  sweeper.Start();
  const auto start = std::chrono::steady_clock::now();
  sweeper.Stop();
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(sweeps == 0);
  sweeper.Stop();  // idempotent
}

TEST_CASE("ExpirySweeper survives a sweep that throws") {
  // The sweeper logs each failure at error; keep the test output quiet.
  const auto level = spdlog::default_logger()->level();
  spdlog::set_level(spdlog::level::off);
  std::atomic<int> sweeps{0};
  ExpirySweeper sweeper(1ms, [&] {
    ++sweeps;
    throw std::runtime_error("sweep failed");
  });
  sweeper.Start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (sweeps < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  sweeper.Stop();
  spdlog::set_level(level);
  CHECK(sweeps >= 2);
}

}  // namespace
}  // namespace upfs::fs
