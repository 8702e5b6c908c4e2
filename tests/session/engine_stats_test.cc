// Engine::GetStats (metrics): commits and failed finishes by reason, bytes
// received once each and committed, the finish histogram, quota refusals
// and pre_commit runs.
#include <sys/stat.h>

#include <fstream>
#include <numeric>
#include <string>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/temp_dir.h"

namespace upfs::session::testing {
namespace {

uint64_t FailedWith(const Engine::Stats& stats, Status::Code code) {
  REQUIRE(stats.failed_finishes.size() > static_cast<size_t>(code));
  return stats.failed_finishes[static_cast<size_t>(code)];
}

uint64_t Finishes(const Engine::Stats& stats) {
  REQUIRE(stats.finish_buckets.size() == std::size(Engine::kFinishBuckets) + 1);
  return std::accumulate(stats.finish_buckets.begin(), stats.finish_buckets.end(), uint64_t{0});
}

TEMPLATE_TEST_CASE("stats: commits, failed finishes by reason, bytes received once and committed",
                   "[engine][stats]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  Engine::Stats stats = fx.engine().GetStats();
  CHECK(stats.commits == 0);
  CHECK(Finishes(stats) == 0);
  CHECK(stats.bytes_received == 0);

  const uint64_t s = fx.Begin("s");
  const uint64_t a = fx.PutFile(s, "a", std::string(1000, 'a'));
  fx.WriteAt(a, 500, std::string(1000, 'a'));  // 500 bytes new, 500 rewritten
  fx.PutFile(s, "b", "bytes");
  stats = fx.engine().GetStats();
  CHECK(stats.open_sessions == 1);
  CHECK(stats.bytes_received == 1505);

  const std::string wrong =
      ManifestLine(std::string(64, '0'), "a") + ManifestLine(Sha256::Of("bytes"), "b");
  REQUIRE_CODE(fx.engine().Finish("s", wrong, nullptr), kHashMismatch);
  REQUIRE_CODE(fx.engine().Finish("s", "not a manifest\n", nullptr), kInvalidArgument);
  stats = fx.engine().GetStats();
  CHECK(stats.commits == 0);
  CHECK(FailedWith(stats, Status::Code::kHashMismatch) == 1);
  CHECK(FailedWith(stats, Status::Code::kInvalidArgument) == 1);
  CHECK(Finishes(stats) == 2);

  REQUIRE_OK(fx.engine().Finish("s", "", nullptr));
  stats = fx.engine().GetStats();
  CHECK(stats.commits == 1);
  CHECK(stats.bytes_committed == 1505);
  CHECK(stats.open_sessions == 0);
  CHECK(stats.assets == 1);
  CHECK(Finishes(stats) == 3);
  CHECK(stats.finish_seconds_sum > 0);
  CHECK(FailedWith(stats, Status::Code::kHashMismatch) == 1);
  CHECK(stats.pre_commit_runs == 0);
}

TEMPLATE_TEST_CASE("stats: quota refusals and pre_commit runs and refusals", "[engine][stats]",
                   MemoryBackend, LevelDbBackend) {
  upfs::testing::TempDir scripts;
  const std::string hook = scripts.Sub("pre-commit");
  {
    std::ofstream out(hook);
    out << "#!/bin/sh\n[ -e '" << scripts.Sub("allow") << "' ] && exit 0\nexit 1\n";
  }
  REQUIRE(chmod(hook.c_str(), 0755) == 0);
  FixtureOptions options;
  options.engine.pre_commit = hook;
  options.engine.quota_bytes = 100;
  EngineFixture fx(TestType::kBackend, options);

  const uint64_t s = fx.Begin("s");
  const uint64_t f = fx.CreateFile(s, "f");
  const uint64_t h = fx.OpenWrite(f);
  REQUIRE_CODE(fx.engine().Write(f, h, 0, std::string(200, 'x')), kQuotaExceeded);
  fx.Write(f, h, 0, std::string(50, 'x'));
  fx.Release(f, h);
  Engine::Stats stats = fx.engine().GetStats();
  CHECK(stats.quota_refusals == 1);
  CHECK(stats.bytes_received == 50);

  REQUIRE_CODE(fx.engine().Finish("s", "", nullptr), kNotPermitted);
  std::ofstream(scripts.Sub("allow")).put('\n');
  REQUIRE_OK(fx.engine().Finish("s", "", nullptr));
  stats = fx.engine().GetStats();
  CHECK(stats.pre_commit_runs == 2);
  CHECK(stats.pre_commit_refusals == 1);
  CHECK(FailedWith(stats, Status::Code::kNotPermitted) == 1);
  CHECK(stats.commits == 1);
  CHECK(stats.post_commit_runs == 0);
}

}  // namespace
}  // namespace upfs::session::testing
