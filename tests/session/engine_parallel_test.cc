// Concurrency (G3, docs/semantics.md): many writers to one file, many
// sessions committing at once.
// Worker threads never touch Catch2 (it is not thread-safe): each records
// its first failure, and the test thread checks them after joining.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

constexpr int kThreads = 8;

// A byte range of a file.
struct Piece {
  uint64_t offset;
  size_t length;
};

// Splits [0, size) into pieces of uneven lengths, in random order.
std::vector<Piece> ShuffledPieces(std::mt19937_64& rng, uint64_t size, size_t max_piece) {
  std::vector<Piece> pieces;
  for (uint64_t off = 0; off < size;) {
    size_t n = std::min<uint64_t>(1 + rng() % max_piece, size - off);
    pieces.push_back({off, n});
    off += n;
  }
  std::shuffle(pieces.begin(), pieces.end(), rng);
  return pieces;
}

// The first failure a worker saw, as text ("" when none).
class FirstError {
 public:
  // Returns whether `s` is OK; records it otherwise.
  bool Check(const Status& s, const std::string& what) {
    if (!s.ok() && error_.empty()) error_ = what + ": " + s.ToString();
    return s.ok();
  }
  template <typename T>
  bool Check(const Result<T>& r, const std::string& what) {
    return Check(r.status(), what);
  }
  void Fail(const std::string& what) {
    if (error_.empty()) error_ = what;
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

TEMPLATE_TEST_CASE("parallel: 8 threads write disjoint ranges of one file in random order",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(41);
  const std::string data = RandomBytes(rng, 8 * 1024 * 1024 + 12345);
  const std::vector<Piece> pieces = ShuffledPieces(rng, data.size(), 150'000);
  uint64_t s = fx.Begin("par");
  uint64_t f = fx.CreateFile(s, "shared.bin");
  Engine& engine = fx.engine();

  std::vector<FirstError> errors(kThreads + 1);
  std::atomic<int> writers_left{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      FirstError& err = errors[t];
      auto h = engine.OpenHandle(f, OpenMode{false, true, false});
      if (err.Check(h, "open")) {
        for (size_t i = t; i < pieces.size(); i += kThreads) {
          const Piece& p = pieces[i];
          auto n = engine.Write(f, h->handle, p.offset,
                                std::string_view(data).substr(p.offset, p.length));
          if (!err.Check(n, "write at " + std::to_string(p.offset))) break;
          if (*n != p.length) err.Fail("short write at " + std::to_string(p.offset));
        }
        err.Check(engine.Release(f, h->handle), "release");
      }
      --writers_left;
    });
  }
  // A reader alongside: whatever it sees is either not yet written (zero)
  // or the right byte, never another piece's bytes.
  threads.emplace_back([&] {
    FirstError& err = errors[kThreads];
    auto h = engine.OpenHandle(f, OpenMode{true, false, false});
    if (!err.Check(h, "open for reading")) return;
    std::mt19937_64 reader_rng(42);
    while (writers_left > 0) {
      uint64_t at = reader_rng() % data.size();
      auto got = engine.Read(f, h->handle, at, 64 * 1024);
      if (!err.Check(got, "read")) break;
      for (size_t i = 0; i < got->size(); ++i) {
        char c = (*got)[i];
        if (c != 0 && c != data[at + i]) {
          err.Fail("read a wrong byte at " + std::to_string(at + i));
          break;
        }
      }
    }
    err.Check(engine.Release(f, h->handle), "release");
  });
  for (std::thread& t : threads) t.join();
  for (const FirstError& e : errors) REQUIRE(e.error() == "");

  REQUIRE(fx.Size(f) == data.size());
  REQUIRE(Contains(fx.Report("par"), "sha256: " + Sha256::Of(data)));
  REQUIRE(fx.ReadAll(f) == data);
  REQUIRE_OK(fx.engine().Finish("par", ManifestLine(Sha256::Of(data), "shared.bin"), nullptr));
  fx.CheckAssetFile("par", "shared.bin", data);
}

// The write that fills the gap before bytes that arrived earlier returns
// without reading them back to hash them: that catch-up runs on the
// engine's background hasher, so parallel writers to one file do not wait
// for it (docs/performance.md, "Where the time goes", (f)). Blob reads are
// held: a write that read back
// would not return until they are released.
TEMPLATE_TEST_CASE("parallel: filling a gap returns before the bytes after it are hashed",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  FixtureOptions options;
  options.faulty = true;
  EngineFixture f(TestType::kBackend, options);
  std::mt19937_64 rng(11);
  const std::string data = RandomBytes(rng, 3 << 20);
  uint64_t s = f.Begin("gap");
  uint64_t file = f.CreateFile(s, "f");
  uint64_t h = f.OpenWrite(file);
  f.Write(file, h, 1 << 20, std::string_view(data).substr(1 << 20));
  f.faulty().HoldBlobReads(true);
  auto filled = std::async(std::launch::async, [&] {
    return f.engine().Write(file, h, 0, std::string_view(data).substr(0, 1 << 20));
  });
  const bool returned = filled.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  f.faulty().HoldBlobReads(false);
  REQUIRE(returned);
  REQUIRE_OK(filled.get());
  f.Release(file, h);
  REQUIRE_OK(f.FinishViaHandle(s, ManifestLine(Sha256::Of(data), "f")));
  f.CheckAssetFile("gap", "f", data);
  CHECK(f.faulty().blob_reads() > 0);  // the hasher (or the finish) read them back
}

TEMPLATE_TEST_CASE("parallel: 8 sessions written and finished at once from 8 threads", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(43);
  struct Upload {
    std::string name;
    std::vector<std::string> files;  // "f0", "f1", "sub/f2"
    std::vector<std::string> data;
    std::vector<std::vector<Piece>> pieces;
  };
  std::vector<Upload> uploads(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    Upload& u = uploads[t];
    u.name = "session-" + std::to_string(t);
    u.files = {"f0", "f1", "sub/f2"};
    for (size_t i = 0; i < u.files.size(); ++i) {
      u.data.push_back(RandomBytes(rng, 100'000 + rng() % 1'500'000));
      u.pieces.push_back(ShuffledPieces(rng, u.data.back().size(), 200'000));
    }
  }
  Engine& engine = fx.engine();

  std::vector<FirstError> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Upload& u = uploads[t];
      FirstError& err = errors[t];
      auto s = engine.Mkdir(kSessionsId, u.name, kDirMode, kAlice);
      if (!err.Check(s, "begin")) return;
      auto sub = engine.Mkdir(s->id, "sub", kDirMode, kAlice);
      if (!err.Check(sub, "mkdir")) return;
      std::string manifest;
      for (size_t i = 0; i < u.files.size(); ++i) {
        bool in_sub = u.files[i].rfind("sub/", 0) == 0;
        auto file = engine.Create(in_sub ? sub->id : s->id,
                                  in_sub ? u.files[i].substr(4) : u.files[i], kFileMode, kAlice);
        if (!err.Check(file, "create")) return;
        auto h = engine.OpenHandle(file->id, OpenMode{false, true, false});
        if (!err.Check(h, "open")) return;
        for (const Piece& p : u.pieces[i]) {
          auto n = engine.Write(file->id, h->handle, p.offset,
                                std::string_view(u.data[i]).substr(p.offset, p.length));
          if (!err.Check(n, "write")) return;
        }
        if (!err.Check(engine.Release(file->id, h->handle), "release")) return;
        manifest += ManifestLine(Sha256::Of(u.data[i]), u.files[i]);
      }
      auto finish = engine.Lookup(s->id, kFinishName);
      if (!err.Check(finish, "lookup .finish")) return;
      auto h = engine.OpenHandle(finish->id, OpenMode{false, true, false});
      if (!err.Check(h, "open .finish")) return;
      if (!err.Check(engine.Write(finish->id, h->handle, 0, manifest), "write .finish")) return;
      CommitInfo info;
      err.Check(engine.Flush(finish->id, h->handle, &info), "commit");
      err.Check(engine.Release(finish->id, h->handle), "release .finish");
      if (info.name != u.name) err.Fail("commit info names '" + info.name + "'");
    });
  }
  for (std::thread& t : threads) t.join();
  for (const FirstError& e : errors) REQUIRE(e.error() == "");

  for (const Upload& u : uploads) {
    for (size_t i = 0; i < u.files.size(); ++i) fx.CheckAssetFile(u.name, u.files[i], u.data[i]);
  }
  REQUIRE(fx.engine().GetUsage().assets == kThreads);
  REQUIRE(fx.engine().GetUsage().sessions == 0);
}

}  // namespace upfs::session::testing
