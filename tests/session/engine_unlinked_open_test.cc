// A file unlinked (or replaced by a rename) while a handle has it open
// stays usable through that handle, as on a local filesystem: stress-ng
// --hdd creates its file, unlinks it and only then writes, fstats and
// reads it back. Its bytes are freed with the last handle, or with the
// session, and never become part of a commit.
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

uint64_t OpenReadWrite(EngineFixture& fx, uint64_t id) {
  auto h = fx.engine().OpenHandle(id, OpenMode{true, true, false});
  REQUIRE_OK(h);
  return h->handle;
}

std::string ReadThrough(EngineFixture& fx, uint64_t id, uint64_t handle, uint64_t offset,
                        size_t size) {
  auto bytes = fx.engine().Read(id, handle, offset, size);
  REQUIRE_OK(bytes);
  return *bytes;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "unlinked while open: writes, reads, fstat and ftruncate work until the last close", "[engine]",
    MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(41);
  const std::string a = RandomBytes(rng, 300'000), b = RandomBytes(rng, 70'000);
  uint64_t s = fx.Begin("hdd");
  uint64_t keep = fx.PutFile(s, "keep", "kept");
  uint64_t f = fx.CreateFile(s, "tmp-stress");
  uint64_t h1 = OpenReadWrite(fx, f);
  uint64_t h2 = fx.OpenRead(f);

  REQUIRE_OK(fx.engine().Unlink(s, "tmp-stress"));
  REQUIRE_CODE(fx.engine().Lookup(s, "tmp-stress"), kNotFound);
  // The name is free again at once.
  uint64_t again = fx.CreateFile(s, "tmp-stress");
  REQUIRE(again != f);

  fx.Write(f, h1, 0, a);
  fx.Write(f, h1, 500'000, b);
  auto attr = fx.engine().GetAttr(f);
  REQUIRE_OK(attr);
  REQUIRE(attr->nlink == 0);
  REQUIRE(attr->size == 570'000);
  REQUIRE(ReadThrough(fx, f, h2, 0, a.size()) == a);
  REQUIRE(ReadThrough(fx, f, h2, 300'000, 200'000) == std::string(200'000, '\0'));
  REQUIRE(ReadThrough(fx, f, h1, 500'000, 100'000) == b);
  // ftruncate and futimens through the descriptor.
  AttrChange shrink;
  shrink.size = 1000;
  shrink.mtime_ns = 42;
  auto shrunk = fx.engine().SetAttr(f, shrink);
  REQUIRE_OK(shrunk);
  REQUIRE(shrunk->size == 1000);
  REQUIRE(shrunk->mtime_ns == 42);
  REQUIRE(ReadThrough(fx, f, h2, 0, 5000) == a.substr(0, 1000));

  // Not listed, not in .status, not committed by an empty manifest.
  fx.Release(f, h2);
  REQUIRE_OK(fx.engine().GetAttr(f));  // h1 still holds it
  REQUIRE(!Contains(fx.Report("hdd"), "file: (unlinked)"));
  fx.Release(f, h1);
  REQUIRE_CODE(fx.engine().GetAttr(f), kNotFound);
  REQUIRE(fx.HasNoBytes(f));

  REQUIRE_OK(fx.engine().Finish("hdd", "", nullptr));
  fx.CheckAssetFile("hdd", "keep", "kept");
  fx.CheckAssetFile("hdd", "tmp-stress", "");
  REQUIRE(fx.AssetId("hdd", "keep") == keep);
}

TEMPLATE_TEST_CASE(
    "unlinked while open: a commit or an abort frees its bytes and stales the handle", "[engine]",
    MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(42);
  const std::string data = RandomBytes(rng, 1'500'000);

  SECTION("commit") {
    uint64_t s = fx.Begin("c");
    fx.PutFile(s, "kept", "k");
    uint64_t f = fx.PutFile(s, "gone", data);
    uint64_t h = OpenReadWrite(fx, f);
    REQUIRE_OK(fx.engine().Unlink(s, "gone"));
    // The manifest cannot name it: it is not a file of the session.
    REQUIRE_CODE(fx.engine().Finish("c", ManifestLine(Sha256::Of(data), "gone"), nullptr),
                 kInvalidArgument);
    REQUIRE_OK(fx.engine().Finish("c", "", nullptr));
    REQUIRE_CODE(fx.engine().Lookup(fx.AssetId("c", ""), "gone"), kNotFound);
    REQUIRE(fx.HasNoBytes(f));
    REQUIRE_CODE(fx.engine().Write(f, h, 0, "late"), kStale);
    REQUIRE_CODE(fx.engine().Read(f, h, 0, 10), kStale);
    fx.Release(f, h);
    fx.CheckAssetFile("c", "kept", "k");
  }
  SECTION("abort") {
    uint64_t s = fx.Begin("a");
    uint64_t f = fx.PutFile(s, "gone", data);
    uint64_t h = fx.OpenWrite(f);
    REQUIRE_OK(fx.engine().Unlink(s, "gone"));
    REQUIRE_OK(fx.engine().Rmdir(kSessionsId, "a"));
    REQUIRE(fx.HasNoBytes(f));
    REQUIRE_CODE(fx.engine().Write(f, h, 0, "late"), kStale);
    fx.Release(f, h);
  }
}

TEST_CASE("unlinked while open: a restart does not bring the file back", "[engine]") {
  EngineFixture fx(Backend::kLevelDb);
  uint64_t s = fx.Begin("r");
  uint64_t f = fx.PutFile(s, "tmp", "abc");
  uint64_t h = fx.OpenWrite(f);
  REQUIRE_OK(fx.engine().Unlink(s, "tmp"));
  fx.Write(f, h, 3, "def");
  AttrChange chmod;
  chmod.mode = 0600;
  REQUIRE_OK(fx.engine().SetAttr(f, chmod));  // must not write its record back
  REQUIRE_OK(fx.engine().SetXattr(f, "user.k", "v"));
  fx.Reopen();  // the daemon died with the handle open
  REQUIRE_CODE(fx.engine().Lookup(s, "tmp"), kNotFound);
  REQUIRE_CODE(fx.engine().GetAttr(f), kNotFound);
  REQUIRE_OK(fx.engine().Finish("r", "", nullptr));
  REQUIRE_CODE(fx.engine().Lookup(fx.AssetId("r", ""), "tmp"), kNotFound);
}

}  // namespace upfs::session::testing
