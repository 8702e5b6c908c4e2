// Sessions' life: recovery after a restart, and expiry of idle sessions
// with a fake clock.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

constexpr int64_t kHour = int64_t{3600} * 1'000'000'000;

}  // namespace

// LevelDB only: the in-memory store does not outlive its engine.
TEST_CASE("recovery: a half-written session survives a restart and finishes", "[engine]") {
  EngineFixture fx(Backend::kLevelDb);
  std::mt19937_64 rng(31);
  constexpr size_t kSize = 2'600'000;  // several stored chunks
  constexpr size_t kHalf = kSize / 2;
  const std::string a = RandomBytes(rng, kSize), b = RandomBytes(rng, kSize),
                    c = RandomBytes(rng, 12345);

  uint64_t before = fx.Begin("before");
  fx.PutFile(before, "old", "committed earlier");
  REQUIRE_OK(fx.engine().Finish("before", "", nullptr));

  uint64_t s = fx.Begin("s");
  REQUIRE_OK(fx.engine().SetXattr(s, kWriteOnceXattr, "1"));
  uint64_t dir = fx.MakeDir(s, "dir");
  // a: its length set first (as cp does), then the first half written.
  uint64_t fa = fx.CreateFile(dir, "a");
  AttrChange size;
  size.size = kSize;
  REQUIRE_OK(fx.engine().SetAttr(fa, size));
  fx.WriteAt(fa, 0, a.substr(0, kHalf));
  // b: only the second half written.
  uint64_t fb = fx.PutFile(s, "b", "");
  fx.WriteAt(fb, kHalf, b.substr(kHalf));
  // c: complete, its hash computed as it arrived.
  uint64_t fc = fx.PutFile(s, "c", c);
  REQUIRE_OK(fx.engine().SetXattr(fc, "user.note", "keep me"));
  uint64_t max_id = std::max({fa, fb, fc});

  fx.Reopen();

  std::string report = fx.Report("s");
  INFO(report);
  REQUIRE(Contains(report, "state: open\n"));
  REQUIRE(Contains(report, "write_once: yes\n"));
  REQUIRE(Contains(
      report, "file: dir/a\nlength: 2600000\nreceived: 1300000\nmissing: [1300000, 2600000)\n"));
  REQUIRE(Contains(report, "file: b\nlength: 2600000\nreceived: 1300000\nmissing: [0, 1300000)\n"));
  REQUIRE(Contains(report, "file: c\nlength: 12345\nreceived: 12345\nmissing: none\n"));
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);
  REQUIRE(fx.Lookup(fx.Lookup(s, "dir"), "a") == fa);
  REQUIRE(fx.ReadAll(fa) == a.substr(0, kHalf) + std::string(kSize - kHalf, '\0'));
  REQUIRE(fx.ReadAll(fc) == c);
  REQUIRE(*fx.engine().GetXattr(fc, "user.note") == "keep me");
  fx.CheckAssetFile("before", "old", "committed earlier");

  // Write only what is missing, then finish.
  fx.WriteAt(fa, kHalf, a.substr(kHalf));
  fx.WriteAt(fb, 0, b.substr(0, kHalf));
  // Write-once survived the restart too.
  uint64_t hc = fx.OpenWrite(fc);
  REQUIRE_CODE(fx.engine().Write(fc, hc, 0, "X"), kWriteConflict);
  fx.Release(fc, hc);
  std::string manifest = ManifestLine(Sha256::Of(a), "dir/a") + ManifestLine(Sha256::Of(b), "b") +
                         ManifestLine(Sha256::Of(c), "c");
  REQUIRE_OK(fx.FinishViaHandle(s, manifest));

  // New ids never collide with ids handed out before the restart.
  uint64_t fresh = fx.Begin("fresh");
  REQUIRE(fresh > max_id);

  // The commit is durable.
  fx.Reopen();
  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "s"), kNotFound);
  fx.CheckAssetFile("s", "dir/a", a);
  fx.CheckAssetFile("s", "b", b);
  fx.CheckAssetFile("s", "c", c);
  fx.CheckAssetFile("before", "old", "committed earlier");
  REQUIRE(fx.Lookup(kSessionsId, "fresh") == fresh);
}

TEST_CASE("recovery: a file rewritten and truncated before a restart has its final bytes",
          "[engine]") {
  EngineFixture fx(Backend::kLevelDb);
  std::mt19937_64 rng(32);
  std::string data = RandomBytes(rng, 3'000'000);
  uint64_t s = fx.Begin("s");
  uint64_t f = fx.PutFile(s, "f", data);
  std::string patch = RandomBytes(rng, 1000);
  fx.WriteAt(f, 500, patch);
  data.replace(500, 1000, patch);
  AttrChange size;
  size.size = 2'000'000;
  REQUIRE_OK(fx.engine().SetAttr(f, size));
  data.resize(2'000'000);
  uint64_t renamed_dir = fx.MakeDir(s, "d");
  REQUIRE_OK(fx.engine().Rename(s, "f", renamed_dir, "g", false, nullptr));

  fx.Reopen();
  REQUIRE(fx.Size(f) == 2'000'000);
  REQUIRE(fx.Lookup(fx.Lookup(s, "d"), "g") == f);
  REQUIRE(fx.ReadAll(f) == data);
  REQUIRE_OK(fx.engine().Finish("s", ManifestLine(Sha256::Of(data), "d/g"), nullptr));
  fx.CheckAssetFile("s", "d/g", data);
}

TEMPLATE_TEST_CASE("expiry: only idle sessions with no open file expire: assets never", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend, FixtureOptions{.ttl_ns = kHour});
  std::mt19937_64 rng(33);
  const std::string big = RandomBytes(rng, 2'000'000);

  uint64_t pub = fx.Begin("pub");
  fx.PutFile(pub, "f", "an asset");
  REQUIRE_OK(fx.engine().Finish("pub", "", nullptr));
  uint64_t idle = fx.Begin("idle");
  uint64_t idle_file = fx.PutFile(idle, "f", big);
  uint64_t busy = fx.Begin("busy");
  uint64_t busy_file = fx.PutFile(busy, "f", "busy");
  uint64_t busy_handle = fx.OpenRead(busy_file);
  uint64_t active = fx.Begin("active");
  uint64_t active_file = fx.PutFile(active, "f", "active");
  size_t bytes_before = fx.memory_blobs() ? fx.memory_blobs()->ApproximateBytes() : 0;

  // Nothing is idle for a full TTL yet.
  fx.clock().Advance(kHour - 1);
  REQUIRE(fx.engine().ExpireIdle().empty());
  fx.WriteAt(active_file, 6, " again");  // activity resets the idle timer
  fx.clock().Advance(2);

  REQUIRE(fx.engine().ExpireIdle() == std::vector<std::string>{"idle"});
  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "idle"), kNotFound);
  REQUIRE_CODE(fx.engine().GetAttr(idle), kNotFound);
  REQUIRE_CODE(fx.engine().GetAttr(idle_file), kNotFound);
  REQUIRE(fx.HasNoBytes(idle_file));
  if (fx.memory_blobs())
    REQUIRE(fx.memory_blobs()->ApproximateBytes() + big.size() <= bytes_before);
  // The others are untouched.
  REQUIRE(fx.Lookup(kSessionsId, "busy") == busy);
  REQUIRE(fx.Lookup(kSessionsId, "active") == active);
  auto read = fx.engine().Read(busy_file, busy_handle, 0, 100);
  REQUIRE_OK(read);
  REQUIRE(*read == "busy");
  REQUIRE(fx.ReadAll(active_file) == "active again");
  fx.CheckAssetFile("pub", "f", "an asset");
  // The name is free again.
  fx.Begin("idle");

  // Once the handle closes, the busy session idles like any other.
  fx.Release(busy_file, busy_handle);
  fx.clock().Advance(kHour);
  std::vector<std::string> expired = fx.engine().ExpireIdle();
  std::sort(expired.begin(), expired.end());
  REQUIRE(expired == std::vector<std::string>{"active", "busy", "idle"});
  REQUIRE(fx.HasNoBytes(busy_file));
  REQUIRE(fx.HasNoBytes(active_file));
  REQUIRE(fx.engine().GetUsage().sessions == 0);

  // Assets never expire.
  fx.clock().Advance(100 * kHour);
  REQUIRE(fx.engine().ExpireIdle().empty());
  fx.CheckAssetFile("pub", "f", "an asset");
  REQUIRE(fx.AssetId("pub", "") == pub);
}

TEST_CASE("expiry: a restart does not make a recovered session look idle", "[engine]") {
  EngineFixture fx(Backend::kLevelDb, FixtureOptions{.ttl_ns = kHour});
  uint64_t s = fx.Begin("s");
  fx.PutFile(s, "f", "data");
  fx.clock().Advance(kHour - 10);
  fx.Reopen();
  fx.clock().Advance(20);
  REQUIRE(fx.engine().ExpireIdle().empty());
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);
}

}  // namespace upfs::session::testing
