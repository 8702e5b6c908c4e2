// Engine data path: bytes at any offset in any order, length and SHA-256
// in file order, write-once and last-write-wins rewrites, truncation.
#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/session/engine_fixture.h"
#include "tests/support/random_bytes.h"

namespace upfs::session::testing {
namespace {

using upfs::testing::RandomBytes;

// The upload of integration.e2e_parallel_chunks (docs/development.md,
// "Test"): 20.8 MB in 1.7 MB chunks is 12 full chunks and a short
// 13th.
constexpr size_t kBigFileBytes = 20'800'000;
constexpr size_t kBigChunkBytes = 1'700'000;

std::string_view Piece(const std::string& data, size_t offset, size_t n) {
  return std::string_view(data).substr(offset, n);
}

}  // namespace

TEMPLATE_TEST_CASE("data: a 20.8 MB file in 1.7 MB chunks has the right length and SHA-256",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  const bool shuffled = GENERATE(false, true);
  const bool empty_manifest = GENERATE(false, true);
  CAPTURE(shuffled, empty_manifest);
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(208);
  const std::string data = RandomBytes(rng, kBigFileBytes);
  const std::string sha = Sha256::Of(data);

  std::vector<size_t> order(13);
  std::iota(order.begin(), order.end(), 0);
  REQUIRE((order.size() - 1) * kBigChunkBytes < kBigFileBytes);
  REQUIRE(order.size() * kBigChunkBytes > kBigFileBytes);  // the last chunk is short
  if (shuffled) {
    std::shuffle(order.begin(), order.end(), rng);
    REQUIRE(!std::is_sorted(order.begin(), order.end()));
    REQUIRE(order.front() != 0);  // the hash cannot simply follow the writes
  }

  uint64_t s = fx.Begin("big");
  uint64_t f = fx.CreateFile(s, "video.mp4");
  uint64_t h = fx.OpenWrite(f);
  for (size_t i : order) {
    size_t offset = i * kBigChunkBytes;
    size_t n = std::min(kBigChunkBytes, kBigFileBytes - offset);
    fx.Write(f, h, offset, Piece(data, offset, n));
  }
  fx.Release(f, h);

  REQUIRE(fx.Size(f) == kBigFileBytes);
  std::string report = fx.Report("big");
  REQUIRE(
      Contains(report, "file: video.mp4\nlength: 20800000\nreceived: 20800000\nmissing: none\n"));
  REQUIRE(Contains(report, "sha256: " + sha));
  REQUIRE(fx.ReadAll(f) == data);

  CommitInfo info;
  if (empty_manifest) {
    REQUIRE_OK(fx.engine().Finish("big", "", &info));
  } else {
    REQUIRE_OK(fx.FinishViaHandle(s, ManifestLine(sha, "video.mp4"), &info));
  }
  REQUIRE(info.name == "big");
  REQUIRE(info.session_id == s);
  REQUIRE_CODE(fx.engine().Lookup(kSessionsId, "big"), kNotFound);
  auto attr = fx.engine().GetAttr(fx.AssetId("big", "video.mp4"));
  REQUIRE_OK(attr);
  REQUIRE(attr->size == kBigFileBytes);
  fx.CheckAssetFile("big", "video.mp4", data);
}

TEMPLATE_TEST_CASE("data: two sessions written sparse and interleaved keep their own bytes",
                   "[engine]", MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(2);
  constexpr size_t kChunk = 300'001;
  const std::string a = RandomBytes(rng, 3 * kChunk - 1234);
  const std::string b = RandomBytes(rng, 3 * kChunk - 99);
  REQUIRE(a.substr(0, 100) != b.substr(0, 100));

  uint64_t sa = fx.Begin("A");
  uint64_t sb = fx.Begin("B");
  // The same relative path in both: nothing may be keyed by path alone.
  uint64_t fa = fx.CreateFile(sa, "data.bin");
  uint64_t fb = fx.CreateFile(sb, "data.bin");
  REQUIRE(fa != fb);
  uint64_t ha = fx.OpenWrite(fa);
  uint64_t hb = fx.OpenWrite(fb);
  auto chunk = [&](const std::string& d, size_t i) {
    return Piece(d, i * kChunk, std::min(kChunk, d.size() - i * kChunk));
  };

  fx.Write(fa, ha, 0, chunk(a, 0));
  fx.Write(fb, hb, 0, chunk(b, 0));
  fx.Write(fa, ha, 2 * kChunk, chunk(a, 2));
  fx.Write(fb, hb, 2 * kChunk, chunk(b, 2));
  // Sparse so far: the middle chunk is missing and reads as zeros.
  REQUIRE(fx.Size(fa) == a.size());
  REQUIRE(fx.Size(fb) == b.size());
  REQUIRE(Contains(fx.Report("A"), "missing: [300001, 600002)\n"));
  REQUIRE(Contains(fx.Report("B"), "missing: [300001, 600002)\n"));
  std::string partial = fx.ReadAll(fa);
  REQUIRE(partial.substr(0, kChunk) == chunk(a, 0));
  REQUIRE(partial.substr(kChunk, kChunk) == std::string(kChunk, '\0'));
  REQUIRE(partial.substr(2 * kChunk) == chunk(a, 2));

  fx.Write(fa, ha, kChunk, chunk(a, 1));
  fx.Write(fb, hb, kChunk, chunk(b, 1));
  fx.Release(fa, ha);
  fx.Release(fb, hb);

  REQUIRE_OK(fx.FinishViaHandle(sa, ManifestLine(Sha256::Of(a), "data.bin")));
  // B is untouched by A's commit.
  REQUIRE(fx.ReadAll(fb) == b);
  REQUIRE(Contains(fx.Report("B"), "state: open\n"));
  REQUIRE_OK(fx.engine().Finish("B", ManifestLine(Sha256::Of(b), "data.bin"), nullptr));

  fx.CheckAssetFile("A", "data.bin", a);
  fx.CheckAssetFile("B", "data.bin", b);
}

TEMPLATE_TEST_CASE(
    "data: a write-once session accepts identical rewrites and refuses different ones", "[engine]",
    MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(3);
  const std::string data = RandomBytes(rng, 10000);
  uint64_t s = fx.Begin("once");
  REQUIRE(*fx.engine().GetXattr(s, kWriteOnceXattr) == "0");  // last-write-wins by default
  REQUIRE_OK(fx.engine().SetXattr(s, kWriteOnceXattr, "1"));
  REQUIRE(*fx.engine().GetXattr(s, kWriteOnceXattr) == "1");
  REQUIRE_CODE(fx.engine().SetXattr(s, kWriteOnceXattr, "yes"), kInvalidArgument);
  REQUIRE(Contains(fx.Report("once"), "write_once: yes\n"));

  uint64_t f = fx.CreateFile(s, "f");
  uint64_t h = fx.OpenWrite(f);
  fx.Write(f, h, 0, Piece(data, 0, 6000));
  // The same bytes again (a resumed upload): fine.
  fx.Write(f, h, 1000, Piece(data, 1000, 2000));
  fx.Write(f, h, 0, Piece(data, 0, 6000));

  SECTION("different bytes inside what was received") {
    std::string changed(Piece(data, 2000, 10));
    changed[9] ^= 1;
    REQUIRE_CODE(fx.engine().Write(f, h, 2000, changed), kWriteConflict);
  }
  SECTION("one different byte in a long identical rewrite") {
    std::string changed(Piece(data, 0, 6000));
    changed[4321] ^= 0x80;
    REQUIRE_CODE(fx.engine().Write(f, h, 0, changed), kWriteConflict);
  }
  SECTION("different received bytes and new bytes in one write") {
    std::string changed = std::string(Piece(data, 5000, 1000)) + RandomBytes(rng, 2000);
    changed[0] ^= 1;
    REQUIRE_CODE(fx.engine().Write(f, h, 5000, changed), kWriteConflict);
  }
  // Nothing of a refused write is stored: not the bytes, not the length.
  REQUIRE(fx.Size(f) == 6000);
  REQUIRE(fx.ReadAll(f) == data.substr(0, 6000));
  REQUIRE(Contains(fx.Report("once"), "received: 6000\n"));
  REQUIRE(Contains(fx.Report("once"), "last_error: "));

  // An identical rewrite that also brings new bytes extends the file.
  fx.Write(f, h, 5000, Piece(data, 5000, 5000));
  fx.Release(f, h);
  REQUIRE(fx.ReadAll(f) == data);
  REQUIRE_OK(fx.engine().Finish("once", ManifestLine(Sha256::Of(data), "f"), nullptr));
  fx.CheckAssetFile("once", "f", data);
}

TEMPLATE_TEST_CASE("data: last write wins, also behind and across the hash frontier", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(4);
  uint64_t s = fx.Begin("lww");

  // File a: written in order (hashed as it arrives), then rewritten behind
  // the frontier, extended, and filled out of order.
  std::string a = RandomBytes(rng, 50000);
  uint64_t fa = fx.CreateFile(s, "a");
  uint64_t ha = fx.OpenWrite(fa);
  for (size_t off = 0; off < a.size(); off += 10000) fx.Write(fa, ha, off, Piece(a, off, 10000));
  REQUIRE(Contains(fx.Report("lww"), "sha256: " + Sha256::Of(a)));
  auto rewrite = [&](std::string& model, uint64_t id, uint64_t h, uint64_t offset,
                     std::string bytes) {
    fx.Write(id, h, offset, bytes);
    if (model.size() < offset + bytes.size()) model.resize(offset + bytes.size());
    model.replace(offset, bytes.size(), bytes);
  };
  rewrite(a, fa, ha, 10000, RandomBytes(rng, 100));   // behind the frontier, different
  rewrite(a, fa, ha, 0, a.substr(0, 5));              // behind the frontier, identical
  rewrite(a, fa, ha, 49990, RandomBytes(rng, 20));    // across the end
  rewrite(a, fa, ha, 60000, RandomBytes(rng, 1000));  // beyond a gap
  rewrite(a, fa, ha, 50010, RandomBytes(rng, 9990));  // fills the gap
  rewrite(a, fa, ha, 60500, RandomBytes(rng, 100));   // rewrite of the filled part
  fx.Release(fa, ha);

  // File b: the rewrites happen before the frontier reaches them.
  std::string b(400, '\0');
  uint64_t fb = fx.CreateFile(s, "b");
  uint64_t hb = fx.OpenWrite(fb);
  rewrite(b, fb, hb, 0, RandomBytes(rng, 100));
  rewrite(b, fb, hb, 200, RandomBytes(rng, 200));
  rewrite(b, fb, hb, 250, RandomBytes(rng, 10));   // ahead of the frontier
  rewrite(b, fb, hb, 50, RandomBytes(rng, 200));   // straddles the frontier and the gap
  rewrite(b, fb, hb, 100, RandomBytes(rng, 100));  // rewrites bytes that just got hashed
  fx.Release(fb, hb);

  REQUIRE(fx.ReadAll(fa) == a);
  REQUIRE(fx.ReadAll(fb) == b);
  REQUIRE_OK(fx.engine().Finish("lww", "", nullptr));
  fx.CheckAssetFile("lww", "a", a);
  fx.CheckAssetFile("lww", "b", b);
}

TEMPLATE_TEST_CASE("truncate: shrinking, then writing again", "[engine]", MemoryBackend,
                   LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(5);
  std::string data = RandomBytes(rng, 3'000'000);  // several stored chunks
  uint64_t s = fx.Begin("t");
  uint64_t f = fx.PutFile(s, "f", data);
  const uint64_t cut = GENERATE(as<uint64_t>{}, 0, 1, 40000, 1'048'576, 2'999'999);
  CAPTURE(cut);

  AttrChange change;
  change.size = cut;
  auto attr = fx.engine().SetAttr(f, change);
  REQUIRE_OK(attr);
  REQUIRE(attr->size == cut);
  data.resize(cut);
  REQUIRE(fx.ReadAll(f) == data);
  uint64_t h = fx.OpenRead(f);
  REQUIRE(fx.engine().Read(f, h, cut, 100)->empty());  // nothing past the new end
  fx.Release(f, h);

  // Growing it again: the dropped bytes are gone, the gap reads as zeros
  // and counts as missing.
  change.size = cut + 5000;
  REQUIRE_OK(fx.engine().SetAttr(f, change));
  REQUIRE(fx.ReadAll(f) == data + std::string(5000, '\0'));
  Status missing = fx.engine().Finish("t", "", nullptr);
  REQUIRE_CODE(missing, kMissingData);
  REQUIRE(Contains(missing.message(),
                   "[" + std::to_string(cut) + ", " + std::to_string(cut + 5000) + ")"));

  // Rewrite a little before the cut and extend past the old end: the bytes
  // dropped by the truncate must not come back.
  std::string more = RandomBytes(rng, 200'000);
  uint64_t at = cut > 10 ? cut - 10 : 0;
  data.resize(at);
  data += more;
  fx.WriteAt(f, at, more);
  REQUIRE(fx.ReadAll(f) == data);
  REQUIRE_OK(fx.FinishViaHandle(s, ManifestLine(Sha256::Of(data), "f")));
  fx.CheckAssetFile("t", "f", data);
}

TEMPLATE_TEST_CASE("truncate: opening with O_TRUNC empties the file", "[engine]", MemoryBackend,
                   LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(6);
  uint64_t s = fx.Begin("t");
  uint64_t f = fx.PutFile(s, "f", RandomBytes(rng, 5000));
  auto h = fx.engine().OpenHandle(f, OpenMode{false, true, true});
  REQUIRE_OK(h);
  REQUIRE(fx.Size(f) == 0);
  std::string data = RandomBytes(rng, 300);
  fx.Write(f, h->handle, 0, data);
  fx.Release(f, h->handle);
  REQUIRE(fx.ReadAll(f) == data);
  REQUIRE(Contains(fx.Report("t"), "length: 300\nreceived: 300\nmissing: none\n"));
  REQUIRE_OK(fx.engine().Finish("t", ManifestLine(Sha256::Of(data), "f"), nullptr));
  fx.CheckAssetFile("t", "f", data);
}

TEMPLATE_TEST_CASE("truncate: extending leaves a gap that finish reports as missing", "[engine]",
                   MemoryBackend, LevelDbBackend) {
  EngineFixture fx(TestType::kBackend);
  std::mt19937_64 rng(7);
  std::string head = RandomBytes(rng, 100);
  uint64_t s = fx.Begin("t");
  uint64_t f = fx.PutFile(s, "f", head);
  AttrChange change;
  change.size = 500;
  REQUIRE_OK(fx.engine().SetAttr(f, change));
  REQUIRE(fx.Size(f) == 500);
  REQUIRE(fx.ReadAll(f) == head + std::string(400, '\0'));
  REQUIRE(Contains(fx.Report("t"), "length: 500\nreceived: 100\nmissing: [100, 500)\n"));

  Status st = fx.engine().Finish("t", "", nullptr);
  REQUIRE_CODE(st, kMissingData);
  REQUIRE(Contains(st.message(), "[100, 500)"));
  REQUIRE(Contains(st.message(), "'f'"));

  std::string tail = RandomBytes(rng, 400);
  fx.WriteAt(f, 100, tail);
  REQUIRE_OK(fx.engine().Finish("t", "", nullptr));
  fx.CheckAssetFile("t", "f", head + tail);
}

}  // namespace upfs::session::testing
