// Expiry and .status: reading .status only looks at a session, so it
// neither counts as activity nor holds the session open.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"

namespace upfs::session::testing {
namespace {

constexpr int64_t kHour = int64_t{3600} * 1'000'000'000;

std::string Field(const std::string& report, std::string_view key) {
  const std::string prefix = std::string(key) + ": ";
  size_t at = report.find(prefix);
  REQUIRE(at != std::string::npos);
  at += prefix.size();
  return report.substr(at, report.find('\n', at) - at);
}

}  // namespace

TEMPLATE_TEST_CASE("expiry: reading .status does not keep a session alive", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend, FixtureOptions{.ttl_ns = kHour});
  uint64_t s = fx.Begin("watched");
  fx.PutFile(s, "f", "data");
  const uint64_t status_id = s + 2;  // a session's ids: root, .finish, .status
  const std::string expires = Field(fx.Report("watched"), "expires");

  // A monitor polls .status through the TTL, and keeps one handle open.
  fx.clock().Advance(kHour / 2);
  uint64_t held = fx.OpenRead(status_id);
  fx.Release(status_id, fx.OpenRead(status_id));
  REQUIRE(Field(fx.Report("watched"), "expires") == expires);
  REQUIRE(Field(fx.Report("watched"), "open_handles") == "0");
  fx.clock().Advance(kHour / 2 + 1);
  REQUIRE(fx.engine().ExpireIdle() == std::vector<std::string>{"watched"});

  // The snapshot stays readable; closing it afterwards is harmless.
  auto text = fx.engine().Read(status_id, held, 0, 4096);
  REQUIRE_OK(text);
  REQUIRE(Contains(*text, "session: watched"));
  REQUIRE_OK(fx.engine().Release(status_id, held));
}

TEMPLATE_TEST_CASE("expiry: .status shows last activity + TTL, and a write moves it", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend, FixtureOptions{.ttl_ns = kHour});
  uint64_t s = fx.Begin("moving");
  uint64_t f = fx.PutFile(s, "f", "data");
  const std::string before = Field(fx.Report("moving"), "expires");
  REQUIRE(before == Field(fx.Report("moving"), "expires"));
  fx.clock().Advance(int64_t{10} * 1'000'000'000);
  fx.WriteAt(f, 4, "more");
  const std::string after = Field(fx.Report("moving"), "expires");
  REQUIRE(after > before);  // ISO 8601 UTC text orders as time does

  uint64_t h = fx.OpenRead(f);
  REQUIRE(Field(fx.Report("moving"), "expires") == "not while files are open");
  fx.Release(f, h);
}

// A steady trickle of abandoned sessions (one expiring at nearly every
// sweep) must not compact the store at every sweep: each LevelDB
// compaction may rewrite tables spanning the whole index, so compacting
// per sweep made the daemon's work per upload grow with the store's age
// (docs/performance.md, "Soak"). The store compacts on its own once enough
// freed records accumulate.
TEMPLATE_TEST_CASE("expiry: sweeps that each expire a small session do not compact the store",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend, FixtureOptions{.faulty = true, .ttl_ns = kHour});
  constexpr int kSweeps = 8;
  for (int i = 0; i < kSweeps; ++i) {
    const std::string name = "abandoned" + std::to_string(i);
    uint64_t s = fx.Begin(name);
    fx.PutFile(s, "f", std::string(4096 * (i + 1), 'x'));
    fx.clock().Advance(kHour + 1);
    REQUIRE(fx.engine().ExpireIdle() == std::vector<std::string>{name});
  }
  REQUIRE(Names(fx.engine().ReadDir(kSessionsId)).empty());
  CHECK(fx.faulty().compact_calls() == 0);
}

}  // namespace upfs::session::testing
