// Per-user limits (session/quota.h): -o quota on the bytes a uid's open
// sessions hold, -o max_sessions on how many it has open. Refused requests
// store nothing; commits, aborts, truncation and unlinking give back; the
// count is rebuilt at a restart; racing writers never pass the limit.
#include <atomic>
#include <thread>
#include <vector>

#include "tests/session/engine_fixture.h"

namespace upfs::session::testing {
namespace {

constexpr Caller kRoot{0, 0};
constexpr Caller kBob{1001, 1001};

std::string Bytes(size_t n, char c) { return std::string(n, c); }

}  // namespace

TEMPLATE_TEST_CASE(
    "quota: writes past -o quota fail and store nothing, and commits, truncates and unlinks give "
    "back",
    "[engine][quota]", MemoryBackend, LevelDbBackend) {
  FixtureOptions options;
  options.engine.quota_bytes = 100'000;
  EngineFixture fx(TestType::kBackend, options);
  Engine& e = fx.engine();
  const uint64_t s1 = fx.Begin("s1");
  const uint64_t a = fx.PutFile(s1, "a", Bytes(60'000, 'a'));
  const uint64_t s2 = fx.Begin("s2");  // the same owner: both count
  const uint64_t b = fx.CreateFile(s2, "b");
  const uint64_t hb = fx.OpenWrite(b);
  fx.Write(b, hb, 0, Bytes(40'000, 'b'));
  // One byte more is refused, whole, and nothing of it is stored.
  REQUIRE_CODE(e.Write(b, hb, 40'000, "x"), kQuotaExceeded);
  REQUIRE(fx.Size(b) == 40'000);
  std::string report = fx.Report("s2");
  CAPTURE(report);
  REQUIRE(
      Contains(report, "quota: uid 1000 holds 100000 of 100000 bytes, 2 sessions (no limit)\n"));
  REQUIRE(Contains(report, "-o quota"));  // last_error names the limit
  // Rewriting bytes already received costs nothing.
  fx.Write(b, hb, 0, Bytes(40'000, 'B'));
  // Another uid has its own quota; root has none.
  const uint64_t sb = e.Mkdir(kSessionsId, "bob", kDirMode, kBob).value().id;
  fx.PutFile(sb, "f", Bytes(100'000, 'f'));
  const uint64_t sr = e.Mkdir(kSessionsId, "root", kDirMode, kRoot).value().id;
  fx.PutFile(sr, "f", Bytes(300'000, 'r'));

  // Truncation gives back what it cuts.
  AttrChange cut;
  cut.size = 50'000;
  REQUIRE_OK(e.SetAttr(a, cut));
  fx.Write(b, hb, 40'000, Bytes(10'000, 'c'));
  REQUIRE_CODE(e.Write(b, hb, 50'000, "x"), kQuotaExceeded);
  // Unlinking gives back once the bytes are freed (its last handle closed).
  fx.Release(b, hb);
  REQUIRE_OK(e.Unlink(s2, "b"));
  fx.PutFile(s2, "c", Bytes(50'000, 'c'));
  const uint64_t d = fx.CreateFile(s2, "d");
  const uint64_t hd = fx.OpenWrite(d);
  REQUIRE_CODE(e.Write(d, hd, 0, "x"), kQuotaExceeded);
  fx.Release(d, hd);
  // A commit gives back the session's bytes: committed assets do not count.
  REQUIRE_OK(fx.FinishViaHandle(s1, ""));
  fx.PutFile(s2, "e", Bytes(50'000, 'e'));
  REQUIRE(Contains(fx.Report("s2"),
                   "quota: uid 1000 holds 100000 of 100000 bytes, 1 sessions (no limit)\n"));
  // So does an abort.
  REQUIRE_OK(e.Unlink(s2, "c"));
  REQUIRE_OK(e.Unlink(s2, "d"));
  REQUIRE_OK(e.Unlink(s2, "e"));
  REQUIRE_OK(e.Rmdir(kSessionsId, "s2"));
  const uint64_t s3 = fx.Begin("s3");
  fx.PutFile(s3, "g", Bytes(100'000, 'g'));
  REQUIRE(Contains(fx.Report("s3"),
                   "quota: uid 1000 holds 100000 of 100000 bytes, 1 sessions (no limit)\n"));
}

TEMPLATE_TEST_CASE(
    "quota: -o max_sessions refuses mkdir past the limit, root exempt, ends give back",
    "[engine][quota]", MemoryBackend, LevelDbBackend) {
  FixtureOptions options;
  options.engine.max_sessions = 2;
  EngineFixture fx(TestType::kBackend, options);
  Engine& e = fx.engine();
  fx.Begin("s1");
  fx.Begin("s2");
  auto refused = e.Mkdir(kSessionsId, "s3", kDirMode, kAlice);
  REQUIRE_CODE(refused, kQuotaExceeded);
  REQUIRE(Contains(refused.status().message(), "max_sessions"));
  REQUIRE_CODE(e.Lookup(kSessionsId, "s3"), kNotFound);
  REQUIRE_OK(e.Mkdir(kSessionsId, "bob", kDirMode, kBob));
  for (const char* name : {"r1", "r2", "r3"})
    REQUIRE_OK(e.Mkdir(kSessionsId, name, kDirMode, kRoot));
  REQUIRE_OK(e.Rmdir(kSessionsId, "s1"));
  fx.Begin("s3");
  REQUIRE_CODE(e.Mkdir(kSessionsId, "s4", kDirMode, kAlice), kQuotaExceeded);
  REQUIRE_OK(fx.FinishViaHandle(fx.Lookup(kSessionsId, "s2"), ""));
  fx.Begin("s4");
}

TEMPLATE_TEST_CASE(
    "quota: a session given to another owner (chown of sessions/NAME) counts for the new owner",
    "[engine][quota]", MemoryBackend, LevelDbBackend) {
  FixtureOptions options;
  options.engine.quota_bytes = 100'000;
  options.engine.max_sessions = 1;
  EngineFixture fx(TestType::kBackend, options);
  Engine& e = fx.engine();
  const uint64_t s1 = fx.Begin("s1");  // alice's
  fx.PutFile(s1, "a", Bytes(60'000, 'a'));
  REQUIRE_CODE(e.Mkdir(kSessionsId, "s2", kDirMode, kAlice), kQuotaExceeded);

  AttrChange give;
  give.uid = kBob.uid;
  give.gid = kBob.gid;
  REQUIRE_OK(e.SetAttr(s1, give));
  // Bob holds the session and its bytes; alice holds nothing.
  REQUIRE(
      Contains(fx.Report("s1"), "quota: uid 1001 holds 60000 of 100000 bytes, 1 of 1 sessions\n"));
  REQUIRE_CODE(e.Mkdir(kSessionsId, "b2", kDirMode, kBob), kQuotaExceeded);
  const uint64_t s2 = fx.Begin("s2");
  fx.PutFile(s2, "f", Bytes(100'000, 'f'));
  REQUIRE(
      Contains(fx.Report("s2"), "quota: uid 1000 holds 100000 of 100000 bytes, 1 of 1 sessions\n"));
  // Bob's writes count against bob's quota.
  const uint64_t b = fx.CreateFile(s1, "b");
  const uint64_t hb = fx.OpenWrite(b);
  fx.Write(b, hb, 0, Bytes(40'000, 'b'));
  REQUIRE_CODE(e.Write(b, hb, 40'000, "x"), kQuotaExceeded);
  fx.Release(b, hb);
}

TEST_CASE("quota: the count is rebuilt from the store at a restart", "[engine][quota]") {
  FixtureOptions options;
  options.engine.quota_bytes = 100'000;
  options.engine.max_sessions = 2;
  EngineFixture fx(Backend::kLevelDb, options);
  const uint64_t s1 = fx.Begin("s1");
  fx.PutFile(s1, "a", Bytes(30'000, 'a'));
  const uint64_t b = fx.PutFile(fx.Begin("s2"), "b", Bytes(40'000, 'b'));
  // Rewritten bytes count once.
  fx.WriteAt(b, 0, Bytes(40'000, 'B'));
  fx.Reopen();
  REQUIRE(
      Contains(fx.Report("s1"), "quota: uid 1000 holds 70000 of 100000 bytes, 2 of 2 sessions\n"));
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "s3", kDirMode, kAlice), kQuotaExceeded);
  const uint64_t c = fx.CreateFile(s1, "c");
  const uint64_t h = fx.OpenWrite(c);
  fx.Write(c, h, 0, Bytes(30'000, 'c'));
  REQUIRE_CODE(fx.engine().Write(c, h, 30'000, "x"), kQuotaExceeded);
  fx.Release(c, h);
}

TEMPLATE_TEST_CASE("parallel: 8 writers of one uid racing for its quota never pass it together",
                   "[engine][quota]", MemoryBackend, LevelDbBackend) {
  constexpr uint64_t kQuota = 1'000'000;
  constexpr size_t kPiece = 10'000;
  FixtureOptions options;
  options.engine.quota_bytes = kQuota;
  EngineFixture fx(TestType::kBackend, options);
  const uint64_t s = fx.Begin("s");
  std::vector<uint64_t> files, handles;
  for (int i = 0; i < 8; ++i) {
    files.push_back(fx.CreateFile(s, "f" + std::to_string(i)));
    handles.push_back(fx.OpenWrite(files.back()));
  }
  // Each writer tries to write 30 pieces (8 x 300 KB = 2.4 MB in all).
  std::atomic<uint64_t> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 8; ++i) {
    writers.emplace_back([&, i] {
      const std::string piece(kPiece, static_cast<char>('a' + i));
      for (uint64_t k = 0; k < 30; ++k) {
        auto n = fx.engine().Write(files[i], handles[i], k * kPiece, piece);
        if (n.ok()) {
          accepted += *n;
        } else if (n.status().code() == Status::Code::kQuotaExceeded) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  REQUIRE(other == 0);
  REQUIRE(accepted == kQuota);
  REQUIRE(refused == 240 - kQuota / kPiece);
  // What the files hold is exactly what was accepted.
  uint64_t held = 0;
  for (int i = 0; i < 8; ++i) {
    fx.Release(files[i], handles[i]);
    held += fx.Size(files[i]);
  }
  REQUIRE(held == kQuota);
}

}  // namespace upfs::session::testing
