// The namespace: rename, unlink and rmdir inside sessions, aborting a
// session, the read-only committed side, and unique session names.
#include <sys/stat.h>

#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

}  // namespace

TEMPLATE_TEST_CASE("rename: rsync's temp file replaces the target", "[engine]", MemoryBackend,
                   LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(21);
  std::string v1 = RandomBytes(rng, 3000), v2 = RandomBytes(rng, 200'000);
  uint64_t s = fx.Begin("sync");
  uint64_t old_file = fx.PutFile(s, "f", v1);
  uint64_t old_handle = fx.OpenWrite(old_file);
  uint64_t tmp = fx.PutFile(s, ".f.Xa12Bc", v2);

  REQUIRE_OK(fx.engine().Rename(s, ".f.Xa12Bc", s, "f", /*no_replace=*/false, nullptr));
  REQUIRE_CODE(fx.engine().Lookup(s, ".f.Xa12Bc"), kNotFound);
  REQUIRE(fx.Lookup(s, "f") == tmp);
  REQUIRE(fx.ReadAll(tmp) == v2);
  REQUIRE(Names(fx.engine().ReadDir(s)) == std::vector<std::string>{".finish", ".status", "f"});
  // The replaced file is out of the namespace, but as on a local
  // filesystem its open handle keeps it (no links left) until released,
  // which frees its bytes (engine_unlinked_open_test.cc has the rest).
  auto replaced = fx.engine().GetAttr(old_file);
  REQUIRE_OK(replaced);
  REQUIRE(replaced->nlink == 0);
  fx.Write(old_file, old_handle, 0, "late");
  fx.Release(old_file, old_handle);
  REQUIRE_CODE(fx.engine().GetAttr(old_file), kNotFound);
  REQUIRE(fx.HasNoBytes(old_file));

  REQUIRE_OK(fx.engine().Finish("sync", ManifestLine(Sha256::Of(v2), "f"), nullptr));
  fx.CheckAssetFile("sync", "f", v2);
  REQUIRE(fx.AssetId("sync", "f") == tmp);
}

TEMPLATE_TEST_CASE("rename: moves within a session, and what it refuses", "[engine]", MemoryBackend,
                   LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("mv");
  uint64_t other = fx.Begin("other");
  uint64_t d = fx.MakeDir(s, "d");
  uint64_t e = fx.MakeDir(d, "e");
  uint64_t f = fx.PutFile(s, "f", "file f");
  fx.PutFile(s, "g", "file g");
  fx.PutFile(other, "x", "x");

  REQUIRE_CODE(fx.engine().Rename(s, "f", s, "g", /*no_replace=*/true, nullptr), kExists);
  REQUIRE_CODE(fx.engine().Rename(s, "f", s, "d", false, nullptr), kIsDirectory);
  REQUIRE_CODE(fx.engine().Rename(s, "d", s, "f", false, nullptr), kNotDirectory);
  REQUIRE_CODE(fx.engine().Rename(s, "d", e, "d2", false, nullptr),
               kInvalidArgument);  // into itself
  REQUIRE_CODE(fx.engine().Rename(s, "f", s, ".finish", false, nullptr), kNotPermitted);
  REQUIRE_CODE(fx.engine().Rename(s, ".status", s, "st", false, nullptr), kNotPermitted);
  REQUIRE_CODE(fx.engine().Rename(s, "f", other, "f", false, nullptr), kCrossSession);
  REQUIRE_CODE(fx.engine().Rename(s, "nope", s, "z", false, nullptr), kNotFound);
  REQUIRE(fx.Lookup(s, "f") == f);
  REQUIRE(fx.ReadAll(f) == "file f");

  REQUIRE_OK(fx.engine().Rename(s, "f", e, "f2", false, nullptr));
  REQUIRE_OK(fx.engine().Rename(s, "d", s, "dd", false, nullptr));
  REQUIRE_CODE(fx.engine().Lookup(s, "f"), kNotFound);
  REQUIRE(fx.Lookup(fx.Lookup(fx.Lookup(s, "dd"), "e"), "f2") == f);
  REQUIRE(Contains(fx.Report("mv"), "file: dd/e/f2\n"));
  // A session directory can be renamed too.
  REQUIRE_OK(fx.engine().Rename(kSessionsId, "mv", kSessionsId, "moved", false, nullptr));
  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "mv"), kNotFound);
  REQUIRE(fx.Lookup(kSessionsId, "moved") == s);

  REQUIRE_OK(fx.engine().Finish("moved", "", nullptr));
  fx.CheckAssetFile("moved", "dd/e/f2", "file f");
  fx.CheckAssetFile("moved", "g", "file g");
  REQUIRE_CODE(fx.engine().Lookup(kAssetsId, "mv"), kNotFound);
}

TEMPLATE_TEST_CASE("rename: moving a session into assets/ commits it", "[engine]", MemoryBackend,
                   LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("drag");
  uint64_t f = fx.CreateFile(s, "f");
  AttrChange grow;
  grow.size = 10;
  REQUIRE_OK(fx.engine().SetAttr(f, grow));
  CommitInfo info;
  // Incomplete: refused with the finish error, session kept.
  REQUIRE_CODE(fx.engine().Rename(kSessionsId, "drag", kAssetsId, "drag", false, &info),
               kMissingData);
  REQUIRE(fx.Lookup(kSessionsId, "drag") == s);
  REQUIRE_CODE(fx.engine().Rename(kSessionsId, "drag", kAssetsId, "other", false, &info),
               kInvalidArgument);
  fx.WriteAt(f, 0, "0123456789");
  REQUIRE_OK(fx.engine().Rename(kSessionsId, "drag", kAssetsId, "drag", false, &info));
  REQUIRE(info.name == "drag");
  REQUIRE(info.session_id == s);
  fx.CheckAssetFile("drag", "f", "0123456789");
}

TEMPLATE_TEST_CASE("unlink and rmdir inside a session", "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(22);
  std::string keep = RandomBytes(rng, 100), drop = RandomBytes(rng, 2'000'000);
  uint64_t s = fx.Begin("u");
  fx.PutFile(s, "keep", keep);
  uint64_t dropped = fx.PutFile(s, "drop", drop);
  uint64_t h = fx.OpenWrite(dropped);
  uint64_t d = fx.MakeDir(s, "d");
  fx.PutFile(d, "inner", "x");

  REQUIRE_OK(fx.engine().Unlink(s, "drop"));
  REQUIRE_CODE(fx.engine().Lookup(s, "drop"), kNotFound);
  REQUIRE_CODE(fx.engine().Unlink(s, "drop"), kNotFound);
  fx.Write(dropped, h, 0, "late");  // still open: POSIX keeps it until the close
  fx.Release(dropped, h);
  REQUIRE(fx.HasNoBytes(dropped));  // its chunks are freed with the last handle
  REQUIRE_CODE(fx.engine().Unlink(s, "d"), kIsDirectory);
  // rm -r removes the control files first; that must not fail.
  REQUIRE_OK(fx.engine().Unlink(s, ".finish"));
  fx.Lookup(s, ".finish");

  REQUIRE_CODE(fx.engine().Rmdir(s, "d"), kNotEmpty);
  REQUIRE_CODE(fx.engine().Rmdir(s, "keep"), kNotDirectory);
  REQUIRE_OK(fx.engine().Unlink(d, "inner"));
  REQUIRE_OK(fx.engine().Rmdir(s, "d"));
  REQUIRE_CODE(fx.engine().Lookup(s, "d"), kNotFound);
  REQUIRE_CODE(fx.engine().GetAttr(d), kNotFound);

  REQUIRE(Names(fx.engine().ReadDir(s)) == std::vector<std::string>{".finish", ".status", "keep"});
  REQUIRE_OK(fx.engine().Finish("u", ManifestLine(Sha256::Of(keep), "keep"), nullptr));
  fx.CheckAssetFile("u", "keep", keep);
  REQUIRE_CODE(fx.engine().Lookup(fx.AssetId("u", ""), "drop"), kNotFound);
  REQUIRE(Names(fx.engine().ReadDir(fx.AssetId("u", ""))) == std::vector<std::string>{"keep"});
}

TEMPLATE_TEST_CASE("rmdir of an empty session directory aborts the session", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(23);
  uint64_t s = fx.Begin("gone");
  uint64_t f = fx.PutFile(s, "f", RandomBytes(rng, 1'500'000));
  REQUIRE_CODE(fx.engine().Rmdir(kSessionsId, "gone"), kNotEmpty);
  REQUIRE_OK(fx.engine().Unlink(s, "f"));
  REQUIRE(fx.HasNoBytes(f));
  REQUIRE_OK(fx.engine().Rmdir(kSessionsId, "gone"));

  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "gone"), kNotFound);
  REQUIRE_CODE(fx.engine().GetAttr(s), kNotFound);
  REQUIRE_CODE(fx.engine().StatusReport("gone"), kNotFound);
  REQUIRE_CODE(fx.engine().Finish("gone", "", nullptr), kNotFound);
  REQUIRE_CODE(fx.engine().Lookup(kAssetsId, "gone"), kNotFound);
  REQUIRE(Names(fx.engine().ReadDir(kSessionsId)).empty());
  REQUIRE_CODE(fx.engine().Rmdir(kSessionsId, "gone"), kNotFound);

  // The name is free again, for a new session with new ids.
  uint64_t again = fx.Begin("gone");
  REQUIRE(again != s);
  fx.PutFile(again, "g", "new");
  REQUIRE_OK(fx.engine().Finish("gone", "", nullptr));
  fx.CheckAssetFile("gone", "g", "new");
}

TEMPLATE_TEST_CASE("assets are read-only", "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t s = fx.Begin("pub");
  uint64_t d = fx.MakeDir(s, "d");
  fx.PutFile(s, "f", "committed bytes");
  fx.PutFile(d, "g", "more");
  REQUIRE_OK(fx.engine().Finish("pub", "", nullptr));
  uint64_t root = fx.AssetId("pub", "");
  uint64_t ad = fx.AssetId("pub", "d");
  uint64_t af = fx.AssetId("pub", "f");
  auto before = fx.engine().GetAttr(af);
  REQUIRE_OK(before);
  Engine& e = fx.engine();

  REQUIRE_CODE(e.Create(root, "x", kFileMode, kAlice), kReadOnly);
  REQUIRE_CODE(e.Create(ad, "x", kFileMode, kAlice), kReadOnly);
  REQUIRE_CODE(e.Create(kAssetsId, "x", kFileMode, kAlice), kReadOnly);
  REQUIRE_CODE(e.Mkdir(root, "x", kDirMode, kAlice), kReadOnly);
  REQUIRE_CODE(e.Mkdir(ad, "x", kDirMode, kAlice), kReadOnly);
  REQUIRE_CODE(e.Mkdir(kAssetsId, "new", kDirMode, kAlice), kReadOnly);
  REQUIRE_CODE(e.Unlink(root, "f"), kReadOnly);
  REQUIRE_CODE(e.Unlink(ad, "g"), kReadOnly);
  REQUIRE_CODE(e.Rmdir(root, "d"), kReadOnly);
  // (rmdir assets/NAME removes the whole asset: engine_asset_removal_test.cc.)
  AttrChange truncate;
  truncate.size = 0;
  REQUIRE_CODE(e.SetAttr(af, truncate), kReadOnly);
  AttrChange chmod;
  chmod.mode = 0777;
  REQUIRE_CODE(e.SetAttr(af, chmod), kReadOnly);
  REQUIRE_CODE(e.SetAttr(root, chmod), kReadOnly);
  AttrChange touch;
  touch.mtime_ns = 5;
  REQUIRE_CODE(e.SetAttr(ad, touch), kReadOnly);
  REQUIRE_CODE(e.OpenHandle(af, OpenMode{false, true, false}), kReadOnly);
  REQUIRE_CODE(e.OpenHandle(af, OpenMode{true, false, true}), kReadOnly);
  uint64_t h = fx.OpenRead(af);
  REQUIRE_CODE(e.Write(af, h, 0, "x"), kReadOnly);
  fx.Release(af, h);
  REQUIRE_CODE(e.SetXattr(af, "user.x", "1"), kReadOnly);
  REQUIRE_CODE(e.SetXattr(af, kSha256Xattr, std::string(64, '0')), kReadOnly);
  REQUIRE_CODE(e.RemoveXattr(af, kSha256Xattr), kReadOnly);
  REQUIRE_CODE(e.Rename(root, "f", root, "f2", false, nullptr), kReadOnly);
  REQUIRE_CODE(e.Rename(kAssetsId, "pub", kAssetsId, "pub2", false, nullptr), kReadOnly);
  // `mv assets/pub sessions/`: a rename on the committed side.
  REQUIRE_CODE(e.Rename(kAssetsId, "pub", kSessionsId, "pub", false, nullptr), kReadOnly);
  uint64_t s2 = fx.Begin("other");
  REQUIRE_CODE(e.Rename(root, "f", s2, "f", false, nullptr), kReadOnly);
  fx.PutFile(s2, "y", "y");
  REQUIRE_CODE(e.Rename(s2, "y", root, "y", false, nullptr), kReadOnly);

  // Nothing changed.
  auto after = e.GetAttr(af);
  REQUIRE_OK(after);
  REQUIRE(after->size == before->size);
  REQUIRE(after->mode == before->mode);
  REQUIRE(after->mtime_ns == before->mtime_ns);
  fx.CheckAssetFile("pub", "f", "committed bytes");
  fx.CheckAssetFile("pub", "d/g", "more");
  REQUIRE(Names(e.ReadDir(root)) == std::vector<std::string>{"d", "f"});
  REQUIRE(Names(e.ReadDir(kAssetsId)) == std::vector<std::string>{"pub"});
}

TEMPLATE_TEST_CASE("open: a handle comes with the kind of file it is on", "[engine]", MemoryBackend,
                   LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  Engine& e = fx.engine();
  const uint64_t s = fx.Begin("kinds");
  const uint64_t file = fx.PutFile(s, "f", "bytes");
  auto expect = [&](uint64_t id, OpenMode mode, NodeKind kind) {
    auto opened = e.OpenHandle(id, mode);
    REQUIRE_OK(opened);
    CHECK(opened->kind == kind);
    fx.Release(id, opened->handle);
  };
  expect(file, OpenMode{true, true, false}, NodeKind::kFile);
  expect(fx.Lookup(s, kStatusName), OpenMode{}, NodeKind::kStatus);
  REQUIRE_CODE(e.OpenHandle(s, OpenMode{}), kIsDirectory);
  // Closed, it commits the session (as `: > .finish`, an empty manifest).
  expect(fx.Lookup(s, kFinishName), OpenMode{false, true, false}, NodeKind::kFinish);
  expect(fx.AssetId("kinds", "f"), OpenMode{}, NodeKind::kAssetFile);
}

TEMPLATE_TEST_CASE("names: a session name is unique across open sessions and assets", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  uint64_t x = fx.Begin("x");
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "x", kDirMode, kAlice), kExists);
  uint64_t y = fx.Begin("y");
  fx.PutFile(y, "f", "y");
  REQUIRE_OK(fx.engine().Finish("y", "", nullptr));
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "y", kDirMode, kAlice), kExists);
  REQUIRE_CODE(fx.engine().Rename(kSessionsId, "x", kSessionsId, "y", false, nullptr), kExists);
  uint64_t z = fx.Begin("z");
  REQUIRE_CODE(fx.engine().Rename(kSessionsId, "x", kSessionsId, "z", false, nullptr), kExists);
  REQUIRE(fx.Lookup(kSessionsId, "x") == x);
  REQUIRE(fx.Lookup(kSessionsId, "z") == z);
  fx.CheckAssetFile("y", "f", "y");

  // Names that are no names.
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "", kDirMode, kAlice), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "a/b", kDirMode, kAlice), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, "..", kDirMode, kAlice), kInvalidArgument);
  REQUIRE_CODE(fx.engine().Mkdir(kSessionsId, std::string(256, 'n'), kDirMode, kAlice),
               kNameTooLong);
  REQUIRE_CODE(fx.engine().Create(x, ".finish", kFileMode, kAlice), kExists);
  REQUIRE_CODE(fx.engine().Mkdir(x, ".status", kDirMode, kAlice), kExists);
  fx.CreateFile(x, "f");
  REQUIRE_CODE(fx.engine().Create(x, "f", kFileMode, kAlice), kExists);
  REQUIRE_CODE(fx.engine().Mkdir(x, "f", kDirMode, kAlice), kExists);
  REQUIRE_CODE(fx.engine().Create(kSessionsId, "f", kFileMode, kAlice), kNotPermitted);
  REQUIRE(Names(fx.engine().ReadDir(kSessionsId)) == std::vector<std::string>{"x", "z"});
}

}  // namespace upfs::session::testing
