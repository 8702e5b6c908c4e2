// POSIX details a local filesystem (ext4) has and tools rely on: which
// operation moves which time, setuid/setgid cleared by an unprivileged
// write, directory link counts, explicitly set access times. One rule per
// test case, each on both stores; the ManualClock makes every "now" exact.
#include <sys/stat.h>

#include "tests/session/engine_fixture.h"

namespace upfs::session::testing {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

// Credentials as RequestCredentials would answer them.
class FakeCredentials final : public Credentials {
 public:
  FakeCredentials(bool fsetid, std::vector<uint32_t> groups)
      : fsetid_(fsetid), groups_(std::move(groups)) {}
  bool HasCapFsetid() override { return fsetid_; }
  bool InGroup(uint32_t gid) override {
    return std::find(groups_.begin(), groups_.end(), gid) != groups_.end();
  }

 private:
  bool fsetid_;
  std::vector<uint32_t> groups_;
};

Attr AttrOf(EngineFixture& f, uint64_t id) {
  auto attr = f.engine().GetAttr(id);
  REQUIRE_OK(attr);
  return *attr;
}

// Moves the clock on and returns the new now.
int64_t Tick(EngineFixture& f) {
  f.clock().Advance(kSecond);
  return f.clock().NowNs();
}

void RequireChangedAt(const Attr& a, int64_t now) {
  CHECK(a.mtime_ns == now);
  CHECK(a.ctime_ns == now);
}

TEMPLATE_TEST_CASE("times: chmod, chown, setxattr and removexattr set ctime only",
                   "[engine][posix]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  uint64_t s = f.Begin("t");
  uint64_t file = f.PutFile(s, "a", "bytes");
  uint64_t dir = f.MakeDir(s, "d");
  for (uint64_t id : {file, dir, s}) {
    CAPTURE(id);
    const int64_t mtime = AttrOf(f, id).mtime_ns;
    int64_t now = Tick(f);
    AttrChange chmod;
    chmod.mode = 0600;
    REQUIRE_OK(f.engine().SetAttr(id, chmod));
    CHECK(AttrOf(f, id).ctime_ns == now);
    now = Tick(f);
    AttrChange chown;
    chown.uid = 7;
    chown.gid = 8;
    REQUIRE_OK(f.engine().SetAttr(id, chown));
    CHECK(AttrOf(f, id).ctime_ns == now);
    now = Tick(f);
    REQUIRE_OK(f.engine().SetXattr(id, "user.k", "v"));
    CHECK(AttrOf(f, id).ctime_ns == now);
    now = Tick(f);
    REQUIRE_OK(f.engine().RemoveXattr(id, "user.k"));
    CHECK(AttrOf(f, id).ctime_ns == now);
    CHECK(AttrOf(f, id).mtime_ns == mtime);
  }
}

TEMPLATE_TEST_CASE("times: utimensat sets atime and mtime, and ctime to now", "[engine][posix]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  uint64_t s = f.Begin("t");
  uint64_t file = f.PutFile(s, "a", "bytes");
  const int64_t now = Tick(f);
  AttrChange times;
  times.atime_ns = 111 * kSecond + 5;
  times.mtime_ns = 222 * kSecond + 7;
  REQUIRE_OK(f.engine().SetAttr(file, times));
  Attr a = AttrOf(f, file);
  CHECK(a.atime_ns == 111 * kSecond + 5);
  CHECK(a.mtime_ns == 222 * kSecond + 7);
  CHECK(a.ctime_ns == now);

  // Reads do not move atime (noatime); writes move mtime and ctime only.
  f.ReadAll(file);
  const int64_t later = Tick(f);
  f.WriteAt(file, 5, "more");
  a = AttrOf(f, file);
  CHECK(a.atime_ns == 111 * kSecond + 5);
  RequireChangedAt(a, later);
}

TEMPLATE_TEST_CASE("times: create, mkdir, unlink, rmdir set the parent's mtime and ctime",
                   "[engine][posix]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  uint64_t s = f.Begin("t");
  uint64_t sub = f.MakeDir(s, "sub");
  for (uint64_t parent : {s, sub}) {
    CAPTURE(parent);
    int64_t now = Tick(f);
    uint64_t file = f.CreateFile(parent, "file");
    RequireChangedAt(AttrOf(f, parent), now);
    CHECK(AttrOf(f, file).ctime_ns == now);
    now = Tick(f);
    f.MakeDir(parent, "dir");
    RequireChangedAt(AttrOf(f, parent), now);
    now = Tick(f);
    REQUIRE_OK(f.engine().Unlink(parent, "file"));
    RequireChangedAt(AttrOf(f, parent), now);
    now = Tick(f);
    REQUIRE_OK(f.engine().Rmdir(parent, "dir"));
    RequireChangedAt(AttrOf(f, parent), now);
  }
}

TEMPLATE_TEST_CASE("times: rename sets both parents' times and the renamed node's ctime",
                   "[engine][posix]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  uint64_t s = f.Begin("t");
  uint64_t from = f.MakeDir(s, "from");
  uint64_t to = f.MakeDir(s, "to");
  uint64_t file = f.PutFile(from, "a", "bytes");
  const int64_t mtime = AttrOf(f, file).mtime_ns;
  const int64_t now = Tick(f);
  REQUIRE_OK(f.engine().Rename(from, "a", to, "b", false, nullptr));
  RequireChangedAt(AttrOf(f, from), now);
  RequireChangedAt(AttrOf(f, to), now);
  Attr a = AttrOf(f, file);
  CHECK(a.ctime_ns == now);
  CHECK(a.mtime_ns == mtime);
  // Renaming a whole session changes its ctime.
  const int64_t later = Tick(f);
  REQUIRE_OK(f.engine().Rename(kSessionsId, "t", kSessionsId, "t2", false, nullptr));
  CHECK(AttrOf(f, s).ctime_ns == later);
}

TEMPLATE_TEST_CASE(
    "times: the session's times, atime included, are committed and survive a restart",
    "[engine][posix]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  uint64_t s = f.Begin("t");
  uint64_t dir = f.MakeDir(s, "d");
  uint64_t file = f.PutFile(dir, "a", "bytes");
  AttrChange times;
  times.atime_ns = 5 * kSecond;
  REQUIRE_OK(f.engine().SetAttr(file, times));
  REQUIRE_OK(f.engine().SetAttr(dir, times));
  Tick(f);
  const Attr file_before = AttrOf(f, file);
  const Attr dir_before = AttrOf(f, dir);
  const Attr root_before = AttrOf(f, s);
  if (TestType::kBackend == Backend::kLevelDb) {
    f.Reopen();
    const Attr file_reopened = AttrOf(f, file);
    CHECK(file_reopened.atime_ns == 5 * kSecond);
    CHECK(file_reopened.mtime_ns == file_before.mtime_ns);
    CHECK(file_reopened.ctime_ns == file_before.ctime_ns);
    CHECK(AttrOf(f, dir).ctime_ns == dir_before.ctime_ns);
  }
  Tick(f);
  REQUIRE_OK(f.FinishViaHandle(s, ""));
  for (auto [path, before] :
       {std::pair<std::string, Attr>{"d/a", file_before}, {"d", dir_before}, {"", root_before}}) {
    CAPTURE(path);
    const Attr after = AttrOf(f, path.empty() ? f.AssetId("t", "") : f.AssetId("t", path));
    CHECK(after.atime_ns == before.atime_ns);
    CHECK(after.mtime_ns == before.mtime_ns);
    CHECK(after.ctime_ns == before.ctime_ns);
  }
  CHECK(AttrOf(f, f.AssetId("t", "d/a")).atime_ns == 5 * kSecond);
}

TEMPLATE_TEST_CASE(
    "setuid: an unprivileged write or O_TRUNC clears the bits a local filesystem clears",
    "[engine][posix]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  uint64_t s = f.Begin("t");
  // kAlice's files have gid 1000.
  FakeCredentials other(/*fsetid=*/false, {2000});
  FakeCredentials member(/*fsetid=*/false, {1000});
  FakeCredentials root(/*fsetid=*/true, {0});
  struct Case {
    const char* name;
    uint32_t mode;
    Credentials* who;
    uint32_t expected;
  };
  const Case cases[] = {
      {"suid, other user", 04777, &other, 0777},
      {"suid+sgid+g+x, other user", 06777, &other, 0777},
      {"sgid without g+x, not in group", 02767, &other, 0767},
      {"sgid without g+x, in group (mandatory locking bit stays)", 02767, &member, 02767},
      {"sgid with g+x, in group", 02777, &member, 0777},
      {"suid, CAP_FSETID", 06777, &root, 06777},
      {"suid, no writer known (mmap write-back)", 04777, nullptr, 04777},
  };
  int n = 0;
  for (const Case& c : cases) {
    for (bool via_trunc : {false, true}) {
      CAPTURE(c.name, via_trunc);
      const std::string name = "f" + std::to_string(n++);
      uint64_t file = f.PutFile(s, name, "x");
      AttrChange chmod;
      chmod.mode = c.mode;
      REQUIRE_OK(f.engine().SetAttr(file, chmod));
      const int64_t now = Tick(f);
      if (via_trunc) {
        auto h = f.engine().OpenHandle(file, OpenMode{false, true, true}, c.who);
        REQUIRE_OK(h);
        f.Release(file, h->handle);
      } else {
        uint64_t h = f.OpenWrite(file);
        REQUIRE_OK(f.engine().Write(file, h, 0, "y", c.who));
        f.Release(file, h);
      }
      const Attr a = AttrOf(f, file);
      CHECK((a.mode & 07777) == c.expected);
      if (c.expected != c.mode) CHECK(a.ctime_ns == now);
      if (TestType::kBackend == Backend::kLevelDb && c.expected != c.mode) {
        f.Reopen();
        CHECK((AttrOf(f, file).mode & 07777) == c.expected);
      }
    }
  }
  // And the asset holds the cleared mode.
  REQUIRE_OK(f.FinishViaHandle(s, ""));
  CHECK((AttrOf(f, f.AssetId("t", "f0")).mode & 07777) == 0777);
}

TEMPLATE_TEST_CASE("nlink: directories count 2 + subdirectories on both sides", "[engine][posix]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  CHECK(AttrOf(f, kRootId).nlink == 4);
  CHECK(AttrOf(f, kSessionsId).nlink == 2);
  CHECK(AttrOf(f, kAssetsId).nlink == 2);
  uint64_t s = f.Begin("t");
  CHECK(AttrOf(f, kSessionsId).nlink == 3);
  CHECK(AttrOf(f, s).nlink == 2);
  uint64_t a = f.MakeDir(s, "a");
  uint64_t b = f.MakeDir(s, "b");
  f.PutFile(s, "file", "x");
  uint64_t a1 = f.MakeDir(a, "1");
  f.MakeDir(a, "2");
  f.PutFile(a, "file", "x");
  CHECK(AttrOf(f, s).nlink == 4);
  CHECK(AttrOf(f, a).nlink == 4);
  CHECK(AttrOf(f, b).nlink == 2);
  CHECK(AttrOf(f, a1).nlink == 2);
  // A directory moved between parents moves its link with it; one
  // replacing an empty directory takes that one's place.
  REQUIRE_OK(f.engine().Rename(a, "1", b, "1", false, nullptr));
  CHECK(AttrOf(f, a).nlink == 3);
  CHECK(AttrOf(f, b).nlink == 3);
  f.MakeDir(b, "empty");
  REQUIRE_OK(f.engine().Rename(b, "1", b, "empty", false, nullptr));
  CHECK(AttrOf(f, b).nlink == 3);
  REQUIRE_OK(f.engine().Rmdir(a, "2"));
  CHECK(AttrOf(f, a).nlink == 2);
  if (TestType::kBackend == Backend::kLevelDb) {
    f.Reopen();
    CHECK(AttrOf(f, s).nlink == 4);
    CHECK(AttrOf(f, b).nlink == 3);
    CHECK(AttrOf(f, a).nlink == 2);
  }
  REQUIRE_OK(f.FinishViaHandle(s, ""));
  CHECK(AttrOf(f, kSessionsId).nlink == 2);
  CHECK(AttrOf(f, kAssetsId).nlink == 3);
  CHECK(AttrOf(f, f.AssetId("t", "")).nlink == 4);
  CHECK(AttrOf(f, f.AssetId("t", "b")).nlink == 3);
  CHECK(AttrOf(f, f.AssetId("t", "a")).nlink == 2);
  CHECK(AttrOf(f, f.AssetId("t", "file")).nlink == 1);
  if (TestType::kBackend == Backend::kLevelDb) {
    f.Reopen();
    CHECK(AttrOf(f, kAssetsId).nlink == 3);
  }
}

TEMPLATE_TEST_CASE("times: sessions/ and assets/ change as sessions begin, end and commit",
                   "[engine][posix]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  int64_t now = Tick(f);
  uint64_t s = f.Begin("t");
  RequireChangedAt(AttrOf(f, kSessionsId), now);
  f.PutFile(s, "a", "x");
  now = Tick(f);
  REQUIRE_OK(f.FinishViaHandle(s, ""));
  RequireChangedAt(AttrOf(f, kSessionsId), now);
  RequireChangedAt(AttrOf(f, kAssetsId), now);
  f.Begin("u");
  now = Tick(f);
  REQUIRE_OK(f.engine().Rmdir(kSessionsId, "u"));
  RequireChangedAt(AttrOf(f, kSessionsId), now);
}

}  // namespace
}  // namespace upfs::session::testing
