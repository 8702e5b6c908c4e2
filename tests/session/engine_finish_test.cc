// Finishing sessions: every failure leaves the session as it was and
// fixable; commits are visible at once; a failing store leaves no partial
// asset.
#include <sys/stat.h>

#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

// A session "s" with files "a" and "dir/b"; what a failed finish must
// leave exactly as it was.
struct TwoFileSession {
  TwoFileSession(EngineFixture& fx, std::mt19937_64& rng) : fx(fx) {
    a = RandomBytes(rng, 5000);
    b = RandomBytes(rng, 1'500'000);
    id = fx.Begin("s");
    dir = fx.MakeDir(id, "dir");
    fa = fx.PutFile(id, "a", a);
    fb = fx.PutFile(dir, "b", b);
  }

  std::string GoodManifest() const {
    return ManifestLine(Sha256::Of(a), "a") + ManifestLine(Sha256::Of(b), "dir/b");
  }

  // The session is open, unchanged, and nothing of it is committed. Its
  // last error is kept in memory only, so not across a restart.
  void CheckIntact(bool restarted = false) {
    REQUIRE(fx.Lookup(kSessionsId, "s") == id);
    std::string report = fx.Report("s");
    REQUIRE(Contains(report, "state: open\n"));
    if (!restarted) REQUIRE(!Contains(report, "last_error: none"));
    REQUIRE_CODE(fx.engine().Lookup(kAssetsId, "s"), kNotFound);
    REQUIRE(Names(fx.engine().ReadDir(kAssetsId)).empty());
    std::vector<store::AssetRecord> assets;
    REQUIRE_OK(fx.store().ListAssets(&assets));
    REQUIRE(assets.empty());
    store::AssetLocation loc;
    REQUIRE(fx.store().LocateId(fa, &loc).IsNotFound());
    REQUIRE(Names(fx.engine().ReadDir(id)) ==
            std::vector<std::string>{".finish", ".status", "a", "dir"});
    REQUIRE(fx.Lookup(dir, "b") == fb);
    REQUIRE(fx.ReadAll(fa) == a);
    REQUIRE(fx.ReadAll(fb) == b);
    // Still writable.
    fx.WriteAt(fa, 0, a.substr(0, 10));
  }

  EngineFixture& fx;
  std::string a, b;
  uint64_t id = 0, dir = 0, fa = 0, fb = 0;
};

}  // namespace

TEMPLATE_TEST_CASE("finish: every failure leaves the session unchanged and fixable", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  const bool via_handle = GENERATE(false, true);
  CAPTURE(via_handle);
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(11);
  TwoFileSession session(fx, rng);
  auto finish = [&](const std::string& manifest) {
    return via_handle ? fx.FinishViaHandle(session.id, manifest)
                      : fx.engine().Finish("s", manifest, nullptr);
  };
  const std::string sha_a = Sha256::Of(session.a);
  const std::string sha_b = Sha256::Of(session.b);
  const std::string good = session.GoodManifest();

  std::string bad;
  Status::Code expected = Status::Code::kOk;
  std::vector<std::string> in_message;  // what the error must name
  std::vector<std::string> in_report;   // what .status must then show
  std::function<void()> fix = [] {};

  SECTION("a wrong hash in the manifest") {
    std::string wrong = Sha256::Of("something else");
    bad = ManifestLine(sha_a, "a") + ManifestLine(wrong, "dir/b");
    expected = Status::Code::kHashMismatch;
    in_message = {"dir/b", wrong, sha_b};
    in_report = {"file: dir/b\n", wrong, sha_b};
  }
  SECTION("wrong bytes received, fixed by rewriting them") {
    std::string corrupt = session.b.substr(1'234'567, 1);
    corrupt[0] ^= 0x40;
    fx.WriteAt(session.fb, 1'234'567, corrupt);
    std::string received = session.b;
    received[1'234'567] = corrupt[0];
    bad = good;
    expected = Status::Code::kHashMismatch;
    in_message = {"dir/b", sha_b, Sha256::Of(received)};
    in_report = {sha_b, Sha256::Of(received)};
    session.b = received;  // what CheckIntact must find
    fix = [&fx, &session] {
      session.b[1'234'567] ^= 0x40;
      fx.WriteAt(session.fb, 1'234'567, session.b.substr(1'234'567, 1));
    };
  }
  SECTION("a missing range") {
    // b again, with bytes [1000, 2000) never sent.
    REQUIRE_OK(fx.engine().Unlink(session.dir, "b"));
    session.fb = fx.CreateFile(session.dir, "b");
    uint64_t h = fx.OpenWrite(session.fb);
    fx.Write(session.fb, h, 0, session.b.substr(0, 1000));
    fx.Write(session.fb, h, 2000, session.b.substr(2000));
    fx.Release(session.fb, h);
    const std::string complete = session.b;
    session.b.replace(1000, 1000, std::string(1000, '\0'));  // the gap reads as zeros
    bad = good;
    expected = Status::Code::kMissingData;
    in_message = {"dir/b", "[1000, 2000)"};
    in_report = {"received: 1499000\nmissing: [1000, 2000)\n"};
    fix = [&fx, &session, complete] {
      fx.WriteAt(session.fb, 1000, complete.substr(1000, 1000));
      session.b = complete;
    };
  }
  SECTION("missing data with an empty manifest") {
    AttrChange change;
    change.size = session.a.size() + 777;
    REQUIRE_OK(fx.engine().SetAttr(session.fa, change));
    session.a += std::string(777, '\0');
    bad = "";
    expected = Status::Code::kMissingData;
    in_message = {"'a'", "[5000, 5777)"};
    in_report = {"missing: [5000, 5777)\n"};
    fix = [&fx, &session] {
      AttrChange back;
      back.size = 5000;
      REQUIRE_OK(fx.engine().SetAttr(session.fa, back));
      session.a.resize(5000);
    };
  }
  SECTION("an unlisted file") {
    bad = ManifestLine(sha_a, "a");
    expected = Status::Code::kInvalidArgument;
    in_message = {"dir/b", "not listed"};
  }
  SECTION("an unknown path") {
    bad = good + ManifestLine(sha_a, "nope");
    expected = Status::Code::kInvalidArgument;
    in_message = {"nope"};
  }
  SECTION("a directory listed as a file") {
    bad = good + ManifestLine(sha_a, "dir");
    expected = Status::Code::kInvalidArgument;
    in_message = {"dir"};
  }
  SECTION("a malformed line") {
    bad = good + "this is not a manifest line\n";
    expected = Status::Code::kInvalidArgument;
    in_message = {"line 3"};
    in_report = {"line 3"};
  }
  SECTION("bad hex") {
    std::string hex = sha_b;
    hex[10] = 'g';
    bad = ManifestLine(sha_a, "a") + ManifestLine(hex, "dir/b");
    expected = Status::Code::kInvalidArgument;
    in_message = {"line 2"};
  }
  SECTION("a duplicate line") {
    bad = good + ManifestLine(sha_a, "a");
    expected = Status::Code::kInvalidArgument;
    in_message = {"'a'", "line 3"};
  }
  SECTION("a path listed twice in two spellings") {
    bad = good + ManifestLine(sha_b, "./dir/b");
    expected = Status::Code::kInvalidArgument;
    in_message = {"dir/b"};
  }
  SECTION("CRLF line endings") {
    bad = ManifestLine(sha_a, "a") + ManifestLine(sha_b, "dir/b");
    for (size_t pos = 0; (pos = bad.find('\n', pos)) != std::string::npos; pos += 2)
      bad.insert(pos, "\r");
    expected = Status::Code::kInvalidArgument;
    in_message = {"carriage return"};
  }

  Status st = finish(bad);
  INFO(st.ToString());
  REQUIRE(st.code() == expected);
  for (const std::string& m : in_message) {
    CAPTURE(m);
    REQUIRE(Contains(st.message(), m));
  }
  std::string report = fx.Report("s");
  INFO(report);
  for (const std::string& m : in_report) {
    CAPTURE(m);
    REQUIRE(Contains(report, m));
  }
  session.CheckIntact();

  fix();
  REQUIRE_OK(finish(session.GoodManifest()));
  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "s"), kNotFound);
  fx.CheckAssetFile("s", "a", session.a);
  fx.CheckAssetFile("s", "dir/b", session.b);
}

TEMPLATE_TEST_CASE("finish: sha256sum's escaped lines and binary marker name files", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("esc");
  fx.PutFile(s, "back\\slash", "one");
  fx.PutFile(s, "new\nline", "two");
  fx.PutFile(s, "plain", "three");
  std::string sha_plain = Sha256::Of("three");
  for (char& c : sha_plain) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  // What `sha256sum -b` prints for these names.
  std::string manifest = "\\" + Sha256::Of("one") + " *back\\\\slash\n" + "\\" + Sha256::Of("two") +
                         "  new\\nline\n" + sha_plain + " *./plain\n";
  REQUIRE_OK(fx.engine().Finish("esc", manifest, nullptr));
  fx.CheckAssetFile("esc", "back\\slash", "one");
  fx.CheckAssetFile("esc", "new\nline", "two");
  fx.CheckAssetFile("esc", "plain", "three");
}

TEMPLATE_TEST_CASE("finish: 100 sessions, each visible in the index the moment finish returns",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(100);
  for (int i = 0; i < 100; ++i) {
    CAPTURE(i);
    std::string name = "upload-" + std::to_string(i);
    std::string data = RandomBytes(rng, (static_cast<size_t>(i) * 7919) % 70000);  // i == 0: empty
    std::string sha = Sha256::Of(data);
    uint64_t s = fx.Begin(name);
    uint64_t sub = fx.MakeDir(s, "sub");
    uint64_t f = fx.PutFile(sub, "file.bin", data);
    if (i % 2) {
      REQUIRE_OK(fx.FinishViaHandle(s, ManifestLine(sha, "sub/file.bin")));
    } else {
      REQUIRE_OK(fx.engine().Finish(name, i % 4 ? "" : ManifestLine(sha, "sub/file.bin"), nullptr));
    }
    auto root = fx.engine().Lookup(kAssetsId, name);
    REQUIRE_OK(root);
    REQUIRE(root->kind == NodeKind::kAssetRoot);
    REQUIRE(root->id == s);  // ids carry over from the session
    auto dir = fx.engine().Lookup(root->id, "sub");
    REQUIRE_OK(dir);
    REQUIRE(dir->kind == NodeKind::kAssetDir);
    auto file = fx.engine().Lookup(dir->id, "file.bin");
    REQUIRE_OK(file);
    REQUIRE(file->kind == NodeKind::kAssetFile);
    REQUIRE(file->id == f);
    REQUIRE(file->size == data.size());
    REQUIRE(file->mode == (S_IFREG | kFileMode));
    auto xattr = fx.engine().GetXattr(file->id, kSha256Xattr);
    REQUIRE_OK(xattr);
    REQUIRE(*xattr == sha);
    REQUIRE_CODE(fx.engine().Lookup(kSessionsId, name), kNotFound);
  }
  REQUIRE(Names(fx.engine().ReadDir(kAssetsId)).size() == 100);
  REQUIRE(Names(fx.engine().ReadDir(kSessionsId)).empty());
  Engine::Usage usage = fx.engine().GetUsage();
  REQUIRE(usage.assets == 100);
  REQUIRE(usage.sessions == 0);
}

TEMPLATE_TEST_CASE("failing store: a failed commit leaves no partial asset and the session intact",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  const bool via_handle = GENERATE(false, true);
  CAPTURE(via_handle);
  EngineFixture fx(TestType::kBackend, FixtureOptions{.faulty = true});
  std::mt19937_64 rng(12);
  TwoFileSession session(fx, rng);
  auto finish = [&](const std::string& manifest) {
    return via_handle ? fx.FinishViaHandle(session.id, manifest)
                      : fx.engine().Finish("s", manifest, nullptr);
  };

  fx.faulty().FailSyncedApplies(true);
  Status st = finish(session.GoodManifest());
  REQUIRE_CODE(st, kIOError);
  REQUIRE(Contains(st.message(), "injected"));
  REQUIRE(fx.faulty().injected_failures() == 1);
  REQUIRE(Contains(fx.Report("s"), "injected"));
  session.CheckIntact();

  SECTION("retry after the store recovers") {}
  SECTION("retry after a restart") {
    if (fx.backend() == Backend::kLevelDb) {
      fx.Reopen();  // nothing of the failed commit was persisted either
      session.CheckIntact(/*restarted=*/true);
    }
  }
  // More bytes arrive before the retry; the commit takes them.
  std::string more = RandomBytes(rng, 777);
  fx.WriteAt(session.fa, session.a.size(), more);
  session.a += more;
  fx.faulty().Disarm();
  REQUIRE_OK(finish(session.GoodManifest()));
  fx.CheckAssetFile("s", "a", session.a);
  fx.CheckAssetFile("s", "dir/b", session.b);
}

TEMPLATE_TEST_CASE("failing store: a failed record or blob write changes nothing", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend, FixtureOptions{.faulty = true});
  std::mt19937_64 rng(13);
  FaultyStore& faults = fx.faulty();

  faults.FailNthApply(1);
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "s", kDirMode, kAlice), kIOError);
  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "s"), kNotFound);
  REQUIRE(Names(fx.engine().ReadDir(kSessionsId)).empty());
  uint64_t s = fx.Begin("s");

  faults.FailNthApply(2);  // the first create succeeds, the second fails
  std::string data = RandomBytes(rng, 4000);
  uint64_t f = fx.PutFile(s, "f", data);
  REQUIRE_CODE(fx.engine().Create(s, "g", kFileMode, kAlice), kIOError);
  REQUIRE_CODE(fx.engine().Lookup(s, "g"), kNotFound);
  REQUIRE_CODE(fx.engine().Mkdir(s, "d", kDirMode, kAlice), kOk);
  REQUIRE(faults.injected_failures() == 2);

  faults.FailNthApply(1);
  AttrChange shrink;
  shrink.size = 10;
  REQUIRE_CODE(fx.engine().SetAttr(f, shrink), kIOError);
  REQUIRE(fx.Size(f) == data.size());
  REQUIRE(fx.ReadAll(f) == data);

  faults.FailNthApply(1);
  REQUIRE_CODE(fx.engine().Rename(s, "f", s, "f2", false, nullptr), kIOError);
  REQUIRE(fx.Lookup(s, "f") == f);
  REQUIRE_CODE(fx.engine().Lookup(s, "f2"), kNotFound);

  faults.FailNthApply(1);
  REQUIRE_CODE(fx.engine().Unlink(s, "f"), kIOError);
  REQUIRE(fx.ReadAll(fx.Lookup(s, "f")) == data);

  faults.FailNthApply(1);
  REQUIRE_CODE(fx.engine().Rmdir(s, "d"), kIOError);
  fx.Lookup(s, "d");

  // A failed blob write stores nothing and does not count as received.
  uint64_t h = fx.OpenWrite(f);
  faults.FailBlobWrites(true);
  REQUIRE_CODE(fx.engine().Write(f, h, data.size(), "tail"), kIOError);
  REQUIRE_CODE(fx.engine().Write(f, h, 100, "rewrite"), kIOError);
  faults.FailBlobWrites(false);
  REQUIRE(fx.Size(f) == data.size());
  REQUIRE(fx.ReadAll(f) == data);
  std::string report = fx.Report("s");
  REQUIRE(Contains(report, "received: 4000\n"));
  REQUIRE(Contains(report, "injected"));
  fx.Write(f, h, data.size(), "tail");
  fx.Release(f, h);
  data += "tail";

  // A failed expiry keeps the session.
  fx.clock().Advance(Options{}.ttl_ns + 1);
  faults.FailNthApply(1);
  REQUIRE(fx.engine().ExpireIdle().empty());
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);

  // And the failed abort of a session keeps it too.
  REQUIRE_OK(fx.engine().Rmdir(s, "d"));
  REQUIRE_OK(fx.engine().Unlink(s, "f"));
  faults.FailNthApply(1);
  REQUIRE_CODE(fx.engine().Rmdir(kSessionsId, "s"), kIOError);
  REQUIRE(fx.Lookup(kSessionsId, "s") == s);
  f = fx.PutFile(s, "f", data);
  REQUIRE_OK(fx.engine().Finish("s", ManifestLine(Sha256::Of(data), "f"), nullptr));
  fx.CheckAssetFile("s", "f", data);
}

// RADOS acknowledges stripe writes in the background (RadosBlobFiles): a
// write the engine was told succeeded can still be lost. The finish must
// not commit a file whose bytes the store lost, however often it is
// retried: the lost range is reported, reads as missing in .status, and a
// rewrite of it finishes.
TEMPLATE_TEST_CASE(
    "bytes lost after they were acknowledged are never committed: .status lists them, a rewrite "
    "finishes",
    "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend, FixtureOptions{.losing_blobs = true});
  std::mt19937_64 rng(17);
  constexpr size_t kMiB = size_t{1} << 20;
  const std::string data = RandomBytes(rng, 3 * kMiB);
  const std::string manifest = ManifestLine(Sha256::Of(data), "f");
  uint64_t s = fx.Begin("s");
  uint64_t f = fx.CreateFile(s, "f");
  uint64_t h = fx.OpenWrite(f);
  fx.Write(f, h, 0, std::string_view(data).substr(0, kMiB));
  fx.losing().LoseWrites(true);
  fx.Write(f, h, kMiB, std::string_view(data).substr(kMiB, kMiB));  // acknowledged, then lost
  fx.losing().LoseWrites(false);
  fx.Write(f, h, 2 * kMiB, std::string_view(data).substr(2 * kMiB));
  fx.Release(f, h);
  const std::string missing_report = "received: " + std::to_string(2 * kMiB) + "\n";

  if (fx.backend() == Backend::kLevelDb) {
    SECTION("a clean stop before the session's finish drops the lost bytes' records too") {
      // Another session's commit meets the failure first (Sync reports it
      // once, to whoever syncs next), so the stop is a clean one.
      uint64_t t = fx.Begin("t");
      fx.PutFile(t, "g", "small");
      const std::string other = ManifestLine(Sha256::Of("small"), "g");
      REQUIRE_CODE(fx.engine().Finish("t", other, nullptr), kIOError);
      REQUIRE_OK(fx.engine().Finish("t", other, nullptr));
      fx.Reopen();
      REQUIRE(Contains(fx.Report("s"), missing_report));
      Status after = fx.engine().Finish("s", manifest, nullptr);
      INFO(after.ToString());
      REQUIRE(after.code() == Status::Code::kMissingData);
      REQUIRE(Contains(after.message(), "missing bytes [1048576, 2097152)"));
      fx.WriteAt(f, kMiB, std::string_view(data).substr(kMiB, kMiB));
      REQUIRE_OK(fx.engine().Finish("s", manifest, nullptr));
      fx.CheckAssetFile("s", "f", data);
      return;
    }
  }

  Status first = fx.engine().Finish("s", manifest, nullptr);
  INFO(first.ToString());
  REQUIRE(first.code() == Status::Code::kIOError);
  REQUIRE(Contains(first.message(), "[1048576, 2097152)"));
  Status again = fx.engine().Finish("s", manifest, nullptr);
  INFO(again.ToString());
  REQUIRE(again.code() == Status::Code::kMissingData);
  REQUIRE(Contains(again.message(), "missing bytes [1048576, 2097152)"));
  REQUIRE_CODE(fx.engine().Lookup(kAssetsId, "s"), kNotFound);
  REQUIRE(Contains(fx.Report("s"), missing_report));

  fx.WriteAt(f, kMiB, std::string_view(data).substr(kMiB, kMiB));
  REQUIRE_OK(fx.engine().Finish("s", manifest, nullptr));
  fx.CheckAssetFile("s", "f", data);
}

// On a store that acknowledges writes before storing them (RADOS: records
// and stripe bytes go out in the background), a session file's close and
// fsync wait for them, and report a loss: the client learns it there, and
// .status lists the range as missing.
TEST_CASE(
    "records lost in the background fail the file's close and fsync: .status lists them, a rewrite "
    "finishes") {
  EngineFixture fx(Backend::kMemory, FixtureOptions{.losing_records = true});
  REQUIRE(fx.engine().CloseWaitsForWrites());
  std::mt19937_64 rng(19);
  const std::string data = RandomBytes(rng, 30000);
  const std::string manifest = ManifestLine(Sha256::Of(data), "f");
  uint64_t s = fx.Begin("s");
  uint64_t f = fx.CreateFile(s, "f");
  uint64_t h = fx.OpenWrite(f);
  fx.Write(f, h, 0, std::string_view(data).substr(0, 10000));
  REQUIRE_OK(fx.engine().Fsync(f, h));
  const int waits = fx.losing_kv().flush_waits();
  REQUIRE(waits > 0);  // the fsync asked the store
  fx.losing_kv().LoseBackgroundCommits(true);
  fx.Write(f, h, 10000, std::string_view(data).substr(10000, 10000));  // acknowledged, then lost
  fx.losing_kv().LoseBackgroundCommits(false);
  fx.Write(f, h, 20000, std::string_view(data).substr(20000));
  // A reader's close and fsync neither wait nor take the writer's loss.
  uint64_t reader = fx.OpenRead(f);
  REQUIRE_OK(fx.engine().Flush(f, reader, nullptr));
  REQUIRE_OK(fx.engine().Fsync(f, reader));
  REQUIRE(fx.losing_kv().flush_waits() == waits);
  fx.Release(f, reader);
  Status closed = fx.engine().Flush(f, h, nullptr);  // close(2)
  INFO(closed.ToString());
  REQUIRE(closed.code() == Status::Code::kIOError);
  REQUIRE(Contains(closed.message(), "lost"));
  REQUIRE(Contains(fx.Report("s"), "received: 20000\n"));
  REQUIRE(Contains(fx.Report("s"), "[10000, 20000)"));
  REQUIRE_OK(fx.engine().Flush(f, h, nullptr));  // reported once
  fx.Release(f, h);
  Status early = fx.engine().Finish("s", manifest, nullptr);
  REQUIRE(early.code() == Status::Code::kMissingData);
  fx.WriteAt(f, 10000, std::string_view(data).substr(10000, 10000));
  REQUIRE_OK(fx.engine().Finish("s", manifest, nullptr));
  fx.CheckAssetFile("s", "f", data);
}

}  // namespace upfs::session::testing
