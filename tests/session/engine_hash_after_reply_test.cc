// Hashing after the reply (Engine::Write's after_reply, as the FUSE layer
// uses it): bytes are stored when Write returns, and the file's SHA-256
// takes them when the caller runs the work it was handed, in file order
// whatever order that work runs in. Blob reads are counted (FaultyStore):
// a feed the engine failed to make would show up as the background hasher
// reading the bytes back.
#include <chrono>
#include <functional>
#include <future>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A write whose hashing is left for later: REQUIREs it stored and handed
// the work back.
std::function<void()> WriteDeferred(EngineFixture& f, uint64_t file, uint64_t h, uint64_t offset,
                                    std::string_view data) {
  std::function<void()> after;
  auto n = f.engine().Write(file, h, offset, data, nullptr, &after);
  REQUIRE_OK(n);
  REQUIRE(*n == data.size());
  REQUIRE(after);
  return after;
}

// A session `name` with one file "f" open for writing.
struct Upload {
  uint64_t session;
  uint64_t file;
  uint64_t handle;
};
Upload BeginUpload(EngineFixture& f, const std::string& name) {
  const uint64_t session = f.Begin(name);
  const uint64_t file = f.CreateFile(session, "f");
  return {session, file, f.OpenWrite(file)};
}

// Whether `future` is still running a tenth of a second later (it waits).
template <typename T>
bool StillWaiting(std::future<T>& future) {
  return future.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout;
}

TEMPLATE_TEST_CASE("hash after reply: feeds run late and out of order, bytes are hashed once",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  FixtureOptions options;
  options.faulty = true;
  EngineFixture f(TestType::kBackend, options);
  std::mt19937_64 rng(21);
  const std::string data = RandomBytes(rng, 3 * kMiB);
  const std::string_view bytes(data);
  const Upload up = BeginUpload(f, "late");
  const uint64_t s = up.session, file = up.file, h = up.handle;
  auto first = WriteDeferred(f, file, h, 0, bytes.substr(0, kMiB));
  auto second = WriteDeferred(f, file, h, kMiB, bytes.substr(kMiB, kMiB));
  auto third = WriteDeferred(f, file, h, 2 * kMiB, bytes.substr(2 * kMiB));
  // The third's feed waits for the bytes before it to be fed by theirs.
  auto late = std::async(std::launch::async, third);
  const bool waited = StillWaiting(late);
  auto middle = std::async(std::launch::async, second);  // waits for the first's
  first();
  middle.get();
  late.get();
  f.Release(file, h);
  REQUIRE(waited);
  REQUIRE(Contains(f.Report("late"), "sha256: " + Sha256::Of(data)));
  CHECK(f.faulty().blob_reads() == 0);  // nothing was read back to hash it
  REQUIRE_OK(f.FinishViaHandle(s, ManifestLine(Sha256::Of(data), "f")));
  f.CheckAssetFile("late", "f", data);
}

TEMPLATE_TEST_CASE("hash after reply: a feed after a gap leaves the bytes to the background hasher",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  FixtureOptions options;
  options.faulty = true;
  EngineFixture f(TestType::kBackend, options);
  std::mt19937_64 rng(22);
  const std::string data = RandomBytes(rng, 2 * kMiB);
  const std::string_view bytes(data);
  const Upload up = BeginUpload(f, "gap");
  const uint64_t s = up.session, file = up.file, h = up.handle;
  // Nothing before these bytes is received: the feed returns at once.
  WriteDeferred(f, file, h, kMiB, bytes.substr(kMiB))();
  WriteDeferred(f, file, h, 0, bytes.substr(0, kMiB))();
  f.Release(file, h);
  REQUIRE(Contains(f.Report("gap"), "sha256: " + Sha256::Of(data)));
  CHECK(f.faulty().blob_reads() > 0);  // the second megabyte was read back
  REQUIRE_OK(f.FinishViaHandle(s, ManifestLine(Sha256::Of(data), "f")));
}

// A truncation between a write and its feed cuts bytes the feed holds:
// they must not reach the hash.
TEMPLATE_TEST_CASE("hash after reply: a feed after a truncation does not hash the cut bytes",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  std::mt19937_64 rng(23);
  const std::string old_bytes = RandomBytes(rng, kMiB);
  const std::string data = RandomBytes(rng, kMiB / 2);
  const Upload up = BeginUpload(f, "cut");
  const uint64_t s = up.session, file = up.file, h = up.handle;
  auto feed = WriteDeferred(f, file, h, 0, old_bytes);
  AttrChange cut;
  cut.size = 0;
  REQUIRE_OK(f.engine().SetAttr(file, cut));
  feed();
  f.Write(file, h, 0, data);
  f.Release(file, h);
  REQUIRE(f.ReadAll(file) == data);
  REQUIRE_OK(f.FinishViaHandle(s, ManifestLine(Sha256::Of(data), "f")));
  f.CheckAssetFile("cut", "f", data);
}

// A finish waits for writes whose feed has not run; a rewrite of bytes a
// feed holds waits for it (it would change them under the hash).
TEMPLATE_TEST_CASE("hash after reply: a finish and a rewrite wait for the feeds of the bytes",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  std::mt19937_64 rng(24);
  const std::string data = RandomBytes(rng, kMiB);
  const std::string head = RandomBytes(rng, 4096);
  const std::string expected = head + data.substr(head.size());
  const Upload up = BeginUpload(f, "wait");
  const uint64_t file = up.file, h = up.handle;
  auto feed = WriteDeferred(f, file, h, 0, data);
  auto rewrite = std::async(std::launch::async, [&] { return f.engine().Write(file, h, 0, head); });
  const bool rewrite_waited = StillWaiting(rewrite);
  auto finish = std::async(std::launch::async, [&] {
    return f.engine().Finish("wait", ManifestLine(Sha256::Of(expected), "f"), nullptr);
  });
  const bool finish_waited = StillWaiting(finish);
  feed();
  REQUIRE_OK(rewrite.get());
  REQUIRE(rewrite_waited);
  REQUIRE(finish_waited);
  // The finish ran once both writes were done: the rewrite's bytes count.
  REQUIRE_OK(finish.get());
  f.Release(file, h);
  f.CheckAssetFile("wait", "f", expected);
}

// The kernel may release a handle as soon as it has the write's reply, and
// an aborted session is then gone: the work handed back keeps what it
// needs (ASan reports a use after free otherwise).
TEMPLATE_TEST_CASE("hash after reply: the work outlives its handle and its aborted session",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture f(TestType::kBackend);
  std::mt19937_64 rng(25);
  const std::string data = RandomBytes(rng, kMiB);
  const Upload up = BeginUpload(f, "gone");
  const uint64_t s = up.session, file = up.file, h = up.handle;
  auto feed = WriteDeferred(f, file, h, 0, data);
  REQUIRE_OK(f.engine().Unlink(s, "f"));
  f.Release(file, h);
  REQUIRE_OK(f.engine().Rmdir(kSessionsId, "gone"));
  feed();
  REQUIRE_CODE(f.engine().Lookup(kSessionsId, "gone").status(), kNotFound);
}

}  // namespace
}  // namespace upfs::session::testing
