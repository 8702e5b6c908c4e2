// Commit hooks (session/hooks.h): pre_commit may refuse a commit and leaves
// the session as it was; post_commit is told of every commit, at least
// once, retried until it succeeds, across a restart.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "session/hooks.h"
#include "session/manifest.h"
#include "store/blob_files.h"
#include "store/kv_store.h"
#include "store/memory_kv.h"
#include "store/records.h"
#include "tests/session/engine_fixture.h"
#include "tests/support/fake_lease.h"
#include "tests/support/random_bytes.h"
#include "tests/support/shared_kv.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;
using upfs::testing::TempDir;

// An executable shell script at `path`.
void WriteScript(const std::string& path, const std::string& body) {
  {
    std::ofstream out(path);
    out << "#!/bin/sh\n" << body;
  }
  REQUIRE(chmod(path.c_str(), 0755) == 0);
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Polls `done` every few ms for up to 30 s (the hooks run in their own
// processes and threads); true once it held.
bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

std::vector<std::string> Notices(EngineFixture& fx) {
  std::vector<std::string> out;
  REQUIRE_OK(fx.store().ListNotices(&out));
  return out;
}

// Session "s" with one file, finished with an empty manifest.
Status FinishOneFile(EngineFixture& fx) {
  const uint64_t s = fx.Begin("s");
  fx.PutFile(s, "a", "bytes");
  return fx.FinishViaHandle(s, "");
}

}  // namespace

TEST_CASE("hooks: the manifest line of a name sha256sum escapes", "[hooks]") {
  const std::string hash(64, 'a');
  REQUIRE(ManifestLineOf(hash, "dir/plain name") == hash + "  dir/plain name\n");
  REQUIRE(ManifestLineOf(hash, "a\\b\nc\rd") == "\\" + hash + "  a\\\\b\\nc\\rd\n");
  auto parsed = ParseManifest(ManifestLineOf(hash, "a\\b\nc\rd") + ManifestLineOf(hash, "x"));
  REQUIRE_OK(parsed);
  REQUIRE(parsed->size() == 2);
  REQUIRE((*parsed)[0].path == "a\\b\nc\rd");
}

TEMPLATE_TEST_CASE(
    "hooks: a refusing pre_commit leaves the session as it was, its stderr in .status",
    "[engine][hooks]", MemoryBackend, LevelDbBackend) {
  TempDir scripts;
  const std::string hook = scripts.Sub("pre-commit");
  const std::string seen = scripts.Sub("seen");
  WriteScript(hook, "env | grep '^UPFS_\\|^PATH=' | sort > '" + seen +
                        "'\n"
                        "cp \"$UPFS_MANIFEST\" '" +
                        seen +
                        ".manifest'\n"
                        "[ -e '" +
                        scripts.Sub("allow") +
                        "' ] && exit 0\n"
                        "echo \"virus found in $UPFS_SESSION\" >&2\n"
                        "echo 'second line' >&2\n"
                        "exit 3\n");
  FixtureOptions options;
  options.engine.pre_commit = hook;
  EngineFixture fx(TestType::kBackend, options);
  std::mt19937_64 rng(7);
  const std::string a = RandomBytes(rng, 5000), b = RandomBytes(rng, 70'000);
  const uint64_t s = fx.Begin("s");
  const uint64_t fa = fx.PutFile(s, "a", a);
  fx.PutFile(fx.MakeDir(s, "dir"), "b", b);
  const std::string manifest =
      ManifestLine(Sha256::Of(a), "a") + ManifestLine(Sha256::Of(b), "dir/b");

  Status refused = fx.FinishViaHandle(s, manifest);
  REQUIRE_CODE(refused, kNotPermitted);
  REQUIRE(Contains(refused.message(), "virus found in s"));
  REQUIRE(!Contains(refused.message(), "second line"));
  REQUIRE(Contains(refused.message(), "status 3"));
  const std::string report = fx.Report("s");
  REQUIRE(Contains(report, "state: open\n"));
  REQUIRE(Contains(report, "virus found in s"));
  REQUIRE(Names(fx.engine().ReadDir(kAssetsId)).empty());
  // The program saw the verified session: its facts and the manifest of
  // computed hashes, in path order.
  const std::string env = ReadText(seen);
  CAPTURE(env);
  REQUIRE(Contains(env, "UPFS_HOOK=pre_commit\n"));
  REQUIRE(Contains(env, "UPFS_SESSION=s\n"));
  REQUIRE(Contains(env, "UPFS_FILES=2\n"));
  REQUIRE(Contains(env, "UPFS_BYTES=75000\n"));
  REQUIRE(Contains(env, "UPFS_UID=1000\n"));
  REQUIRE(Contains(env, "UPFS_GID=1000\n"));
  REQUIRE(Contains(env, "PATH=" + std::string(kHookPath) + "\n"));
  REQUIRE(ReadText(seen + ".manifest") == manifest);
  // The manifest file is the daemon's, removed after the run.
  const size_t at = env.find("UPFS_MANIFEST=");
  REQUIRE(at != std::string::npos);
  const std::string manifest_path = env.substr(at + 14, env.find('\n', at) - at - 14);
  REQUIRE(!std::filesystem::exists(manifest_path));
  // Still writable, and a mv into assets/ is refused the same way.
  fx.WriteAt(fa, 0, a.substr(0, 10));
  REQUIRE_CODE(fx.engine().Rename(kSessionsId, "s", kAssetsId, "s", false, nullptr), kNotPermitted);
  REQUIRE(Contains(fx.Report("s"), "state: open\n"));

  // Once the program accepts, the same manifest commits.
  std::ofstream(scripts.Sub("allow")).put('\n');
  REQUIRE_OK(fx.FinishViaHandle(s, manifest));
  fx.CheckAssetFile("s", "a", a);
  fx.CheckAssetFile("s", "dir/b", b);
}

TEMPLATE_TEST_CASE("hooks: a pre_commit past hook_timeout is killed with its children and refuses",
                   "[engine][hooks]", MemoryBackend, LevelDbBackend) {
  TempDir scripts;
  const std::string hook = scripts.Sub("slow");
  const std::string child = scripts.Sub("child");
  WriteScript(hook, "sleep 60 &\necho $! > '" + child + "'\nwait\n");
  FixtureOptions options;
  options.engine.pre_commit = hook;
  options.engine.hook_timeout_ns = 300'000'000;
  EngineFixture fx(TestType::kBackend, options);
  Status refused = FinishOneFile(fx);
  REQUIRE_CODE(refused, kNotPermitted);
  REQUIRE(Contains(refused.message(), "hook_timeout"));
  REQUIRE(Contains(fx.Report("s"), "state: open\n"));
  // The program's child went with it (its whole process group).
  const pid_t pid = std::stoi(ReadText(child));
  REQUIRE(WaitFor([&] {
    if (kill(pid, 0) != 0) return true;
    // Gone but not yet reaped by its new parent.
    std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
    return stat.find(") Z ") != std::string::npos;
  }));
}

TEMPLATE_TEST_CASE(
    "hooks: post_commit is told of every commit, retried until it succeeds, names unsplit",
    "[engine][hooks]", MemoryBackend, LevelDbBackend) {
  TempDir scripts;
  const std::string hook = scripts.Sub("post-commit");
  const std::string log = scripts.Sub("log");
  // Fails the first attempt for "flaky".
  WriteScript(hook,
              "printf '%s|%s|%s|%s\\n' \"$UPFS_ASSET\" \"$UPFS_FILES\" \"$UPFS_BYTES\" "
              "\"$UPFS_ATTEMPT\" >> '" +
                  log +
                  "'\n"
                  "[ \"$UPFS_ASSET\" = flaky ] && [ \"$UPFS_ATTEMPT\" = 1 ] && { echo 'try again' "
                  ">&2; exit 1; }\n"
                  "exit 0\n");
  FixtureOptions options;
  options.engine.post_commit = hook;
  EngineFixture fx(TestType::kBackend, options);
  const std::string hostile = "a b; touch pwned $(touch pwned2) `touch pwned3` \"'";
  for (const std::string& name : {hostile, std::string("flaky"), std::string("plain")}) {
    const uint64_t s = fx.Begin(name);
    fx.PutFile(s, "f", "12345");
    fx.PutFile(s, "g", "678");
    REQUIRE_OK(fx.FinishViaHandle(s, ""));
  }
  // In any order: the retry may come before or after the later commits.
  const std::vector<std::string> expected = {hostile + "|2|8|1", "flaky|2|8|1", "flaky|2|8|2",
                                             "plain|2|8|1"};
  auto lines = [&] {
    std::vector<std::string> out;
    std::istringstream in(ReadText(log));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    std::sort(out.begin(), out.end());
    return out;
  };
  REQUIRE(WaitFor([&] { return lines().size() >= expected.size() && Notices(fx).empty(); }));
  std::vector<std::string> sorted = expected;
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(lines() == sorted);
  for (const char* stray : {"/pwned", "/pwned2", "/pwned3"})
    REQUIRE(!std::filesystem::exists(stray));
}

TEST_CASE("hooks: an undelivered commit notice survives a restart and is delivered after it",
          "[engine][hooks]") {
  TempDir scripts;
  const std::string hook = scripts.Sub("post-commit");
  const std::string log = scripts.Sub("log");
  const std::string ok = scripts.Sub("ok");
  WriteScript(hook, "[ -e '" + ok + "' ]; rc=$?\necho \"$UPFS_ASSET $UPFS_ATTEMPT\" >> '" + log +
                        "'\nexit $rc\n");
  FixtureOptions options;
  options.engine.post_commit = hook;
  // One attempt before the restart: the next would be a minute later.
  options.engine.post_commit_retry_ns = int64_t{60} * 1'000'000'000;
  EngineFixture fx(Backend::kLevelDb, options);
  const uint64_t s = fx.Begin("s");
  fx.PutFile(s, "f", "12345");
  REQUIRE_OK(fx.FinishViaHandle(s, ""));
  // The notice is in the store from the commit on, until a run succeeds.
  REQUIRE(Notices(fx) == std::vector<std::string>{"s"});
  REQUIRE(WaitFor([&] { return ReadText(log) == "s 1\n"; }));
  REQUIRE(Notices(fx) == std::vector<std::string>{"s"});

  std::ofstream(ok).put('\n');
  fx.Reopen();
  REQUIRE(WaitFor([&] { return Notices(fx).empty(); }));
  // Delivered by the restarted engine, at its first attempt.
  REQUIRE(ReadText(log) == "s 1\ns 1\n");
}

// Several mounts: a sweep's TakeOver queues the notices it takes from
// mounts that are gone, never this mount's own again. A scan that began
// before the Loop delivered and removed an own notice still lists it (as
// the notice put back here stands for); queued again, it was delivered
// twice (multi.failover saw it).
TEST_CASE("hooks: a sweep's takeover of commit notices never delivers this mount's own twice",
          "[engine][hooks]") {
  TempDir scripts;
  const std::string hook = scripts.Sub("post-commit");
  const std::string log = scripts.Sub("log");
  WriteScript(hook, "echo \"$UPFS_ASSET\" >> '" + log + "'\n");
  auto kv = std::make_shared<store::MemoryKv>();
  const std::string me = "00000000000000aa", gone = "00000000000000bb";
  auto lease = std::make_shared<upfs::testing::FakeLease>(me);
  lease->live = {me};
  auto opened = store::KvStore::Open(std::make_unique<upfs::testing::SharedKv>(kv),
                                     std::make_unique<store::MemoryBlobFiles>(),
                                     /*create=*/true, lease);
  REQUIRE(opened.ok());
  store::KvStore& st = **opened;
  for (const char* name : {"mine", "zzz"}) {
    store::AssetRecord asset;
    asset.name = name;
    store::Batch commit;
    commit.Put(asset);
    REQUIRE_OK(st.Apply(commit, /*sync=*/true));
  }
  store::Batch notice;
  notice.AddNotice("mine");
  REQUIRE_OK(st.Apply(notice, /*sync=*/true));
  PostCommitSettings settings;
  settings.program = hook;
  CommitNotifier notifier(&st, settings);
  REQUIRE_OK(notifier.Start());
  auto notices = [&] {
    std::vector<std::string> out;
    REQUIRE_OK(st.ListNotices(&out));
    return out;
  };
  REQUIRE(WaitFor([&] { return notices().empty(); }));
  REQUIRE(ReadText(log) == "mine\n");

  // What a scan begun before that removal lists: "mine" as this mount's,
  // and "zzz" of a mount that is gone (queued after "mine": by name).
  store::KvWrite stale;
  stale.Put(store::keys::Notice("mine"), me);
  stale.Put(store::keys::Notice("zzz"), gone);
  REQUIRE_OK(kv->Commit(stale, /*sync=*/true));
  REQUIRE_OK(notifier.TakeOver());
  REQUIRE(WaitFor([&] { return ReadText(log).find("zzz") != std::string::npos; }));
  CHECK(ReadText(log) == "mine\nzzz\n");
  CHECK(notifier.delivered() == 2);
}

TEST_CASE("hooks: a program that cannot be started refuses, naming why", "[engine][hooks]") {
  FixtureOptions options;
  options.engine.pre_commit = "/nonexistent/upfs-hook";
  EngineFixture fx(Backend::kMemory, options);
  Status refused = FinishOneFile(fx);
  REQUIRE_CODE(refused, kNotPermitted);
  REQUIRE(Contains(refused.message(), "could not be started"));
  REQUIRE(Contains(refused.message(), "No such file or directory"));
}

}  // namespace upfs::session::testing
